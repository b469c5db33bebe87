package httpstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	httpstore "github.com/ltxvfs/ltxvfs/storage/http"
)

// followTimeout bounds the wait for a follower to see a change or a 304:
// a guard, not a timing assertion.
const followTimeout = 15 * time.Second

// poll reads the manifest with etag until check says stop, and returns
// the number of reads.
func poll(t *testing.T, c *httpstore.Client, etag string, check func(body string, err error) bool) int {
	t.Helper()
	deadline := time.Now().Add(followTimeout)
	body := ""
	for n := 1; ; n++ {
		b, info, err := storage.ReadAllObject(context.Background(), c, "manifest", storage.ReadOptions{IfNoneMatch: etag}, 1<<20)
		if err != nil && !errors.Is(err, storage.ErrNotModified) {
			t.Fatalf("poll with ETag %s: %v", etag, err)
		}
		if err == nil {
			body = string(b)
		}
		if check(string(b), err) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("polled for %v; last body %q, ETag %s", followTimeout, body, etag)
		}
		etag = info.ETag
		time.Sleep(50 * time.Millisecond)
	}
}

// serverETag is what nginx gives as the ETag or Last-Modified of a path.
func serverETag(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("ETag") + resp.Header.Get("Last-Modified")
}

// nginx's validators have one-second resolution: a manifest rewritten
// within the second of the version a reader has, at the same size, gets
// the same ETag and Last-Modified. The reader must still get it, and get
// 304s once the second is safely past.
func TestRewriteWithinTheSameSecond(t *testing.T) {
	for _, cfg := range []nginxtest.Config{{}, {NoETag: true}} {
		t.Run(fmt.Sprintf("NoETag=%v", cfg.NoETag), func(t *testing.T) {
			t.Parallel()
			cfg.Root = t.TempDir()
			srv := nginxtest.Start(t, cfg)
			w := file.New(cfg.Root)
			write := func(content string) {
				if _, err := w.WriteObject(context.Background(), "manifest", strings.NewReader(content), storage.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(storage.FileObjectDir(cfg.Root), "manifest")
			write("version one")
			c := open(t, srv.URL, testOptions)
			body, etag, err := readWithInfo(c, "")
			if err != nil || body != "version one" {
				t.Fatalf("read: %q, %v", body, err)
			}
			before := serverETag(t, srv.URL+"/ltx/ltxvfs/manifest")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			write("version two")
			if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil { // the same second, as a quick writer gets
				t.Fatal(err)
			}
			if after := serverETag(t, srv.URL+"/ltx/ltxvfs/manifest"); after != before {
				t.Fatalf("nginx's validators changed (%s, then %s): the test needs them equal", before, after)
			}
			body, _, err = readWithInfo(c, etag)
			if err != nil || body != "version two" {
				t.Fatalf("read with version one's ETag after a rewrite within its second: %q, %v; want %q", body, err, "version two")
			}
			polls := poll(t, c, etag, func(b string, err error) bool {
				if err == nil && b != "version two" {
					t.Fatalf("polling the manifest: %q, want %q", b, "version two")
				}
				return errors.Is(err, storage.ErrNotModified)
			})
			// The 304 came from nginx, for the condition it understands:
			// no body was sent. (4 requests before the polls: two reads
			// and two looks at nginx's validators.)
			var last nginxtest.Request
			for _, r := range srv.Requests(t, nginxtest.Origin, 4+polls) {
				if r.Status == http.StatusNotModified {
					last = r
				}
			}
			sent := last.IfNoneMatch
			if cfg.NoETag {
				sent = last.IfModifiedSince
			}
			if sent == "" || last.Bytes != 0 {
				t.Fatalf("no 304 answered a conditional GET (NoETag=%v); the last: %+v", cfg.NoETag, last)
			}
		})
	}
}

func readWithInfo(c storage.Client, etag string) (string, string, error) {
	b, info, err := storage.ReadAllObject(context.Background(), c, "manifest", storage.ReadOptions{IfNoneMatch: etag}, 1<<20)
	return string(b), info.ETag, err
}

// Through a caching proxy that stands in for a CDN: LTX files come from
// its cache, and a changed manifest reaches the reader once its one-second
// TTL runs out; the reader never goes back to the old one, and then gets
// 304s.
func TestThroughCachingProxy(t *testing.T) {
	root := t.TempDir()
	data := replicaSite(t, root)
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, Cache: true})
	c := open(t, srv.CacheURL+"/replica", testOptions)
	for range 2 {
		got, err := readFile(c, 10, 20)
		if err != nil || string(got) != string(data[10:30]) {
			t.Fatalf("ranged read through the proxy: %v", err)
		}
	}
	for _, r := range srv.Requests(t, nginxtest.Origin, 1) {
		if strings.HasSuffix(r.URI, ".ltx") && r.Range != "" {
			t.Fatalf("the proxy asked the origin for a range (%+v): it caches whole files", r)
		}
	}

	w := file.New(filepath.Join(root, "replica"))
	if _, err := w.WriteObject(context.Background(), "manifest", strings.NewReader("version two"), storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := false
	poll(t, c, "", func(b string, err error) bool {
		switch {
		case err == nil && b == "version two":
			seen = true
		case err == nil && seen:
			t.Fatalf("after version two, the proxy served %q", b)
		case err == nil && b != "manifest":
			t.Fatalf("polling through the proxy: %q", b)
		}
		return seen && errors.Is(err, storage.ErrNotModified)
	})
	hits := 0
	for _, r := range srv.Requests(t, nginxtest.Cache, 1) {
		if r.CacheStatus == "HIT" {
			hits++
		}
	}
	if hits == 0 {
		t.Fatal("the proxy served nothing from its cache")
	}
}

// Behind a caching proxy (a CDN), a manifest rewritten within the second
// of the version before, at the same size, must reach the reader too.
func TestRewriteWithinTheSameSecondThroughCachingProxy(t *testing.T) {
	root := t.TempDir()
	srv := nginxtest.Start(t, nginxtest.Config{Root: root, Cache: true})
	w := file.New(root)
	write := func(content string) {
		if _, err := w.WriteObject(context.Background(), "manifest", strings.NewReader(content), storage.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(storage.FileObjectDir(root), "manifest")
	write("version one")
	c := open(t, srv.CacheURL, testOptions)
	body, etag, err := readWithInfo(c, "")
	if err != nil || body != "version one" {
		t.Fatalf("read: %q, %v", body, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	write("version two")
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	poll(t, c, etag, func(b string, err error) bool { return err == nil && b == "version two" })
}
