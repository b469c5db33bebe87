package nginxtest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fetch GETs url with the given headers and returns the answer and its body.
func fetch(t *testing.T, srv *Server, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: srv.Transport()}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func writeFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServesTheDirectoryWithRangesAndCacheControl(t *testing.T) {
	root := t.TempDir() // 0700, owned by the test's user: nginx runs as that user
	writeFile(t, root, "db/ltx/0/0000000000000001-0000000000000001.ltx", "0123456789")
	writeFile(t, root, "db/ltx/ltxvfs/manifest", "manifest v1")
	srv := Start(t, Config{Root: root, TLS: true})

	for _, base := range []string{srv.URL, srv.TLSURL} {
		resp, body := fetch(t, srv, base+"/db/ltx/0/0000000000000001-0000000000000001.ltx", map[string]string{"Range": "bytes=2-5"})
		if resp.StatusCode != http.StatusPartialContent || body != "2345" || resp.Header.Get("Content-Range") != "bytes 2-5/10" {
			t.Fatalf("%s: ranged GET: %s %q Content-Range %q", base, resp.Status, body, resp.Header.Get("Content-Range"))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Fatalf("%s: an LTX file's Cache-Control is %q", base, cc)
		}
		resp, body = fetch(t, srv, base+"/db/ltx/ltxvfs/manifest", nil)
		if body != "manifest v1" || resp.Header.Get("Cache-Control") != "public, max-age=1" || resp.Header.Get("ETag") == "" {
			t.Fatalf("%s: manifest: %q, Cache-Control %q, ETag %q", base, body, resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
		resp, _ = fetch(t, srv, base+"/db/ltx/ltxvfs/manifest", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("%s: conditional GET with the ETag: %s, want 304", base, resp.Status)
		}
	}
	reqs := srv.Requests(t, Origin, 6)
	if r := reqs[0]; r.URI != "/db/ltx/0/0000000000000001-0000000000000001.ltx" || r.Status != 206 || r.Range != "bytes=2-5" || r.Bytes != 4 {
		t.Fatalf("first logged request: %+v", r)
	}
	if r := reqs[2]; r.Status != 304 || r.IfNoneMatch == "" {
		t.Fatalf("third logged request: %+v", r)
	}
}

func TestOptions(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "f.ltx", "0123456789")
	srv := Start(t, Config{Root: root, NoETag: true, IgnoreRange: true, Locations: "location ^~ /denied/ { return 403; }\n"})
	resp, body := fetch(t, srv, srv.URL+"/f.ltx", map[string]string{"Range": "bytes=2-5"})
	if resp.StatusCode != http.StatusOK || body != "0123456789" {
		t.Fatalf("ranged GET with max_ranges 0: %s %q, want 200 and the whole file", resp.Status, body)
	}
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("etag off: ETag %q, Last-Modified %q", resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"))
	}
	if resp, _ := fetch(t, srv, srv.URL+"/denied/x.ltx", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a test's own location: %s, want 403", resp.Status)
	}
}

func TestCachingProxy(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "ltx/0/0000000000000001-0000000000000001.ltx", "0123456789")
	srv := Start(t, Config{Root: root, Cache: true})
	const file = "/ltx/0/0000000000000001-0000000000000001.ltx"
	for i, want := range []string{"MISS", "HIT"} {
		resp, body := fetch(t, srv, srv.CacheURL+file, map[string]string{"Range": "bytes=1-2"})
		if body != "12" || resp.Header.Get("X-Cache-Status") != want {
			t.Fatalf("GET %d through the proxy: %q, X-Cache-Status %q, want %q", i+1, body, resp.Header.Get("X-Cache-Status"), want)
		}
	}
	// The file changes at the origin (never done to a real LTX file): the
	// proxy keeps serving its copy, as a CDN would for a year.
	writeFile(t, root, "ltx/0/0000000000000001-0000000000000001.ltx", "abcdefghij")
	if _, body := fetch(t, srv, srv.CacheURL+file, nil); body != "0123456789" {
		t.Fatalf("after the origin changed, the proxy served %q, want its cached copy", body)
	}
	if n := len(srv.Requests(t, Origin, 1)); n != 1 {
		t.Fatalf("the origin saw %d requests, want 1 (the rest from the cache)", n)
	}
}

// The configuration the tests run is the one the README recommends.
func TestREADMEShowsTheTestedConfiguration(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{CacheControl, CacheControlBehindCDN} {
		for line := range strings.SplitSeq(conf, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line == "}" {
				continue
			}
			if !strings.Contains(string(readme), line) {
				t.Errorf("README.md does not show the tested line %q", line)
			}
		}
	}
}
