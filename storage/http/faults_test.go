package httpstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/storage"
	httpstore "github.com/ltxvfs/ltxvfs/storage/http"
)

// The tests below run against tiny Go servers, for answers nginx does not
// give: truncated bodies, stalls, failures that pass, wrong ranges.

const filePath = "/db/ltx/0/0000000000000001-0000000000000001.ltx"

// hangGuard bounds a call that must return once its context is done: a
// guard against a hang, not a timing assertion.
const hangGuard = 30 * time.Second

// serve starts a loopback server and returns the replica URL under it.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/db"
}

func TestTruncatedBody(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 100)
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		if r.Header.Get("Range") != "" {
			w.Header().Set("Content-Range", "bytes 0-999/1000")
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write(content[:500]) // then the handler returns: the connection closes short
	})
	c := open(t, u, testOptions)
	for what, err := range map[string]error{
		"whole file": second(readFile(c, 0, 0)),
		"range":      second(readFile(c, 0, 1000)),
		"object":     readObject(c, "manifest"),
	} {
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), u+"/ltx/") {
			t.Errorf("%s with a truncated body: got %v, want io.ErrUnexpectedEOF naming the URL", what, err)
		}
	}
}

func TestWrongRangeIsNeverServed(t *testing.T) {
	for name, answer := range map[string]func(w http.ResponseWriter){
		"another start": func(w http.ResponseWriter) {
			w.Header().Set("Content-Range", "bytes 0-19/100")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(bytes.Repeat([]byte("x"), 20))
		},
		"no Content-Range": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusPartialContent)
			w.Write(bytes.Repeat([]byte("x"), 20))
		},
		"length disagrees": func(w http.ResponseWriter) {
			w.Header().Set("Content-Range", "bytes 10-29/100")
			w.Header().Set("Content-Length", "25")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(bytes.Repeat([]byte("x"), 25))
		},
		"gzipped": func(w http.ResponseWriter) {
			w.Header().Set("Content-Range", "bytes 10-29/100")
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(bytes.Repeat([]byte("x"), 20))
		},
	} {
		u := serve(t, func(w http.ResponseWriter, r *http.Request) { answer(w) })
		c := open(t, u, testOptions)
		if got, err := readFile(c, 10, 20); err == nil {
			t.Errorf("%s: a ranged read returned %q", name, got)
		} else if !strings.Contains(err.Error(), u+"/ltx/") {
			t.Errorf("%s: %v does not name the URL", name, err)
		}
	}
}

func TestSlowServerHonoursContext(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "manifest") {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("the first bytes"))
			w.(http.Flusher).Flush()
		}
		select { // stall: no answer, or half a body
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := open(t, u, testOptions)
	for what, read := range map[string]func(ctx context.Context) error{
		"headers": func(ctx context.Context) error {
			rc, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 10)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"body": func(ctx context.Context) error {
			_, _, err := storage.ReadAllObject(ctx, c, "manifest", storage.ReadOptions{}, 1<<20)
			return err
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- read(ctx) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), u+"/ltx/") {
				t.Errorf("%s from a stalled server: got %v, want context.DeadlineExceeded naming the URL", what, err)
			}
		case <-time.After(hangGuard):
			t.Fatalf("%s from a stalled server: still waiting %v after the context's deadline", what, hangGuard)
		}
		cancel()
	}

	// Without a deadline, the URL's timeout= bounds the wait for headers.
	var requests atomic.Int64
	u = serve(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	opts := testOptions
	opts.MaxAttempts = 2
	c = open(t, u+"?timeout=100ms", opts)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	_, _, err := storage.ReadAllObject(ctx, c, "manifest", storage.ReadOptions{}, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") || !strings.Contains(err.Error(), "2 attempts") {
		t.Fatalf("a server that never answers, timeout=100ms: got %v", err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests, want MaxAttempts = 2", n)
	}
}

func TestRetries(t *testing.T) {
	content := []byte("the manifest")
	for _, tt := range []struct {
		name     string
		failures int
		status   int
		wantErr  bool
	}{
		{"503 twice", 2, http.StatusServiceUnavailable, false},
		{"429 with Retry-After", 1, http.StatusTooManyRequests, false},
		{"500 for ever", 100, http.StatusInternalServerError, true},
		{"400 is not retried", 100, http.StatusBadRequest, true},
	} {
		var requests atomic.Int64
		u := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if int(requests.Add(1)) <= tt.failures {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(tt.status)
				return
			}
			w.Write(content)
		})
		c := open(t, u, testOptions)
		err := readObject(c, "manifest")
		if (err != nil) != tt.wantErr || err != nil && !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
			t.Errorf("%s: got %v", tt.name, err)
		}
		want := int64(min(tt.failures+1, httpstore.DefaultMaxAttempts))
		if tt.status == http.StatusBadRequest {
			want = 1
		}
		if n := requests.Load(); n != want {
			t.Errorf("%s: %d requests, want %d", tt.name, n, want)
		}
	}

	// A refused connection is retried, then reported.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := open(t, "http://"+addr+"/db", testOptions)
	if err := readObject(c, "manifest"); err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "5 attempts") {
		t.Errorf("a refused connection: got %v", err)
	}
}

func TestMissingFileIsAskedAgain(t *testing.T) {
	var requests atomic.Int64
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		// The edge has the file from the third request on.
		if requests.Add(1) <= 2 || r.URL.Path != filePath {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("0123456789"))
	})
	opts := testOptions
	opts.NotFoundRetry = 10 * time.Second // generous: the file comes at the third request
	c := open(t, u, opts)
	if got, err := readFile(c, 0, 0); err != nil || string(got) != "0123456789" {
		t.Fatalf("a file that reaches the edge late: %q, %v", got, err)
	}

	// An object is not asked again: a missing manifest is an answer.
	requests.Store(100)
	if err := readObject(c, "manifest"); !errors.Is(err, os.ErrNotExist) || requests.Load() != 101 {
		t.Fatalf("a missing object: %v after %d requests, want os.ErrNotExist after 1", err, requests.Load()-100)
	}
	// A file that stays missing is reported, as missing, in the end.
	c = open(t, u, testOptions)
	requests.Store(0)
	_, err := c.OpenLTXFile(context.Background(), 0, 2, 2, 0, 0)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "asking again") || requests.Load() < 2 {
		t.Fatalf("a file that stays missing: %v after %d requests", err, requests.Load())
	}
}

func TestServerIgnoringConditions(t *testing.T) {
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`) // and no Last-Modified: the ETag is trusted
		w.Write([]byte("the manifest"))
	})
	c := open(t, u, testOptions)
	_, info, err := storage.ReadAllObject(context.Background(), c, "manifest", storage.ReadOptions{}, 1<<20)
	if err != nil || info.ETag != `"v1"` {
		t.Fatalf("read: %v, ETag %s", err, info.ETag)
	}
	if _, _, err := c.ReadObject(context.Background(), "manifest", storage.ReadOptions{IfNoneMatch: info.ETag}); !errors.Is(err, storage.ErrNotModified) {
		t.Fatalf("a 200 with the ETag asked about: got %v, want ErrNotModified", err)
	}
}

func TestRedirects(t *testing.T) {
	t.Setenv("LTXVFS_TEST_TOKEN", "s3cr3t-token")
	t.Setenv("LTXVFS_TEST_HEADER", "X-Api-Key: s3cr3t-key")
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			leaked.Store(r.Header.Clone())
		}
		w.Write([]byte("the manifest"))
	}))
	t.Cleanup(other.Close)
	var hops atomic.Int64
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/db/ltx/ltxvfs/"):
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		default:
			http.Redirect(w, r, r.URL.Path+"x"+strconv.FormatInt(hops.Add(1), 10), http.StatusFound)
		}
	})
	c := open(t, u+"?bearer-token-env=LTXVFS_TEST_TOKEN&header-env=LTXVFS_TEST_HEADER", testOptions)
	if err := readObject(c, "manifest"); err != nil {
		t.Fatalf("an object moved to another host: %v", err)
	}
	if h := leaked.Load(); h != nil {
		t.Fatalf("the token and headers went along to another host: %v", h)
	}
	if _, err := readFile(c, 0, 0); err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Fatalf("an endless chain of redirects: got %v", err)
	}
}

// Validators stay untrusted until caches may no longer hold the version
// before: Settle past Last-Modified, plus the answer's cache lifetime.
func TestValidatorsSettleAfterTheCacheLifetime(t *testing.T) {
	for _, tt := range []struct {
		cacheControl string
		age          time.Duration // of the object, by the server's clock
		conditional  bool
	}{
		{"", 3 * time.Second, true},
		{"", time.Second, false},
		{"public, max-age=5", 3 * time.Second, false},
		{"public, max-age=5", 8 * time.Second, true},
		{"max-age=600, s-maxage=1", 4 * time.Second, true},
		{"public, max-age=31536000", 2 * time.Hour, true}, // bounded
	} {
		var lastCondition atomic.Value
		lastCondition.Store("")
		u := serve(t, func(w http.ResponseWriter, r *http.Request) {
			lastCondition.Store(r.Header.Get("If-None-Match"))
			now := time.Now().UTC().Truncate(time.Second)
			w.Header().Set("Date", now.Format(http.TimeFormat))
			w.Header().Set("Last-Modified", now.Add(-tt.age).Format(http.TimeFormat))
			w.Header().Set("ETag", `"v1"`)
			if tt.cacheControl != "" {
				w.Header().Set("Cache-Control", tt.cacheControl)
			}
			w.Write([]byte("the manifest"))
		})
		c := open(t, u, testOptions)
		_, info, err := storage.ReadAllObject(context.Background(), c, "manifest", storage.ReadOptions{}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = storage.ReadAllObject(context.Background(), c, "manifest", storage.ReadOptions{IfNoneMatch: info.ETag}, 1<<20)
		sent := lastCondition.Load().(string) != ""
		if sent != tt.conditional || sent != errors.Is(err, storage.ErrNotModified) {
			t.Errorf("Cache-Control %q, %v old: the second read sent a condition: %v, want %v (%v)", tt.cacheControl, tt.age, sent, tt.conditional, err)
		}
	}
}

// Ranged reads read to their end and closed leave their connection for
// the next: a reader makes thousands of them.
func TestConnectionsAreKept(t *testing.T) {
	root := t.TempDir()
	replicaSite(t, root)
	srv := nginxtest.Start(t, nginxtest.Config{Root: root})
	var dials atomic.Int64
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	opts := testOptions
	opts.Transport = tr
	c := open(t, srv.URL+"/replica", opts)
	for range 20 {
		if _, err := readFile(c, 10, 20); err != nil {
			t.Fatal(err)
		}
		if err := readObject(c, "manifest"); err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("40 reads one after the other dialled %d connections, want 1", n)
	}
}
