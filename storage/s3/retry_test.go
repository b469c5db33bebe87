package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	s3 "github.com/ltxvfs/ltxvfs/storage/s3"
)

// fakeS3 is an HTTP server on loopback that answers each request with the
// handler's choice and records what it was asked.
type fakeS3 struct {
	mu       sync.Mutex
	requests []string // "GET /bucket/key"
}

func (f *fakeS3) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// fakeClient starts a fake S3 server running handle (n is the 1-based number
// of the request) and returns a client for s3://bucket/<prefix> on it.
func fakeClient(t *testing.T, prefix string, maxAttempts int, handle func(n int, w http.ResponseWriter, r *http.Request)) (*s3.Client, *fakeS3) {
	t.Helper()
	f := &fakeS3{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())
		n := len(f.requests)
		f.mu.Unlock()
		handle(n, w, r)
	}))
	t.Cleanup(srv.Close)
	c := open(t, "s3://bucket/"+prefix+"?force-path-style=true&endpoint="+srv.URL, s3.Options{
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		MaxAttempts: maxAttempts,
		MaxBackoff:  time.Millisecond,
	})
	return c, f
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>fake `+code+`</Message></Error>`)
}

// TestRetriesTransientErrors answers 500, 503 SlowDown and 502 before
// serving: the read succeeds on the fourth attempt.
func TestRetriesTransientErrors(t *testing.T) {
	data := []byte("0123456789")
	c, f := fakeClient(t, "db", 5, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			s3Error(w, 500, "InternalError")
		case 2:
			s3Error(w, 503, "SlowDown")
		case 3:
			w.WriteHeader(502)
		default:
			if got := r.Header.Get("Range"); got != "bytes=2-5" {
				t.Errorf("Range %q, want bytes=2-5", got)
			}
			w.Header().Set("Content-Range", "bytes 2-5/10")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[2:6])
		}
	})
	rc, err := c.OpenLTXFile(context.Background(), 0, 1, 1, 2, 4)
	if err != nil {
		t.Fatalf("read after three transient errors: %v", err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "2345" {
		t.Fatalf("read %q, %v; want 2345", got, err)
	}
	if f.count() != 4 {
		t.Fatalf("server saw %d requests, want 4 (three failures, one success)", f.count())
	}
}

// TestRetriedUploadResendsTheWholeFile fails two PUTs: each attempt must
// carry the whole file, or the object would be stored cut short.
func TestRetriedUploadResendsTheWholeFile(t *testing.T) {
	file := ltxFiles(t, 1)[0]
	var bodies [][]byte
	var mu sync.Mutex
	c, f := fakeClient(t, "db", 5, func(n int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		if n <= 2 {
			s3Error(w, 503, "ServiceUnavailable")
			return
		}
		if got := r.Header.Get("X-Amz-Meta-Litestream-Timestamp"); got == "" {
			t.Errorf("PUT without litestream-timestamp metadata")
		}
		w.Header().Set("ETag", `"x"`)
	})
	if _, err := c.WriteLTXFile(context.Background(), 0, 1, 1, bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	if f.count() != 3 {
		t.Fatalf("server saw %d requests, want 3", f.count())
	}
	for i, b := range bodies {
		if !bytes.Equal(b, file) {
			t.Fatalf("attempt %d sent %d bytes, want the whole %d-byte file", i+1, len(b), len(file))
		}
	}
}

// TestGivesUpOnPersistentErrors always answers 500: the client stops after
// its attempts with an error that says what failed.
func TestGivesUpOnPersistentErrors(t *testing.T) {
	c, f := fakeClient(t, "db", 3, func(n int, w http.ResponseWriter, r *http.Request) {
		s3Error(w, 500, "InternalError")
	})
	_, err := c.OpenLTXFile(context.Background(), 0, 1, 1, 0, 0)
	wantErr(t, "open", err, "s3://bucket/db/0000/0000000000000001-0000000000000001.ltx", "500", "InternalError", "attempts, 3")
	if f.count() != 3 {
		t.Fatalf("server saw %d requests, want 3", f.count())
	}
}

// TestNoRetryOnClientErrors: a missing key or refused credentials do not get
// better by asking again.
func TestNoRetryOnClientErrors(t *testing.T) {
	for code, status := range map[string]int{"NoSuchKey": 404, "AccessDenied": 403, "InvalidRange": 416} {
		c, f := fakeClient(t, "db", 5, func(n int, w http.ResponseWriter, r *http.Request) {
			s3Error(w, status, code)
		})
		if _, err := c.OpenLTXFile(context.Background(), 0, 1, 1, 0, 0); err == nil {
			t.Fatalf("%s: no error", code)
		}
		if f.count() != 1 {
			t.Fatalf("%s: server saw %d requests, want 1", code, f.count())
		}
	}
}

// TestIgnoredRangeIsAnError: a server that ignores Range and sends the whole
// object must not have its first bytes taken for the range.
func TestIgnoredRangeIsAnError(t *testing.T) {
	c, _ := fakeClient(t, "db", 1, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("0123456789"))
	})
	_, err := c.OpenLTXFile(context.Background(), 0, 1, 1, 2, 4)
	wantErr(t, "open", err, "Content-Range", "0000000000000001-0000000000000001.ltx")
}

// TestDeleteSendsContentMD5 checks the header some S3-compatible servers
// require on DeleteObjects, and that per-key failures other than NoSuchKey
// are reported.
func TestDeleteSendsContentMD5(t *testing.T) {
	c, f := fakeClient(t, "db", 1, func(n int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sum := md5.Sum(body)
		if got, want := r.Header.Get("Content-MD5"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("Content-MD5 %q, want %q", got, want)
		}
		if !bytes.Contains(body, []byte("<Key>db/0000/0000000000000001-0000000000000001.ltx</Key>")) {
			t.Errorf("delete body does not name the file: %s", body)
		}
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>`+
			`<Error><Key>db/0000/0000000000000001-0000000000000001.ltx</Key><Code>NoSuchKey</Code><Message>gone</Message></Error>`+
			`<Error><Key>db/0000/0000000000000002-0000000000000002.ltx</Key><Code>AccessDenied</Code><Message>no</Message></Error>`+
			`</DeleteResult>`)
	})
	err := c.DeleteLTXFiles(context.Background(), []*ltx.FileInfo{{Level: 0, MinTXID: 1, MaxTXID: 1}, {Level: 0, MinTXID: 2, MaxTXID: 2}})
	wantErr(t, "delete", err, "1 of 2", "s3://bucket/db/0000/0000000000000002-0000000000000002.ltx", "AccessDenied")
	if f.count() != 1 {
		t.Fatalf("server saw %d requests, want 1", f.count())
	}
}

// TestEmptyPrefixOnSlashKeepingServer: on a server that keeps the leading
// slash of "/0000/..." keys (AWS), bare "0000/..." keys belong to someone
// else and are not listed, by a level's listing ("0000/") or by the
// listing of every level ("000").
func TestEmptyPrefixOnSlashKeepingServer(t *testing.T) {
	for _, all := range []bool{false, true} {
		bare := "0000/"
		if all {
			bare = "000"
		}
		for _, keepsSlash := range []bool{true, false} {
			c, f := fakeClient(t, "", 1, func(n int, w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					if keepsSlash {
						w.WriteHeader(404)
					}
					return
				}
				var contents string
				if r.URL.Query().Get("prefix") == bare {
					contents = `<Contents><Key>0000/0000000000000001-0000000000000001.ltx</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>10</Size></Contents>`
				}
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name><IsTruncated>false</IsTruncated>`+contents+`</ListBucketResult>`)
			})
			var infos []*ltx.FileInfo
			var err error
			if all {
				infos, err = c.AllLTXFiles(context.Background(), false)
			} else {
				infos, err = storage.ListLevel(context.Background(), c, 0, 0, false)
			}
			if err != nil {
				t.Fatal(err)
			}
			if keepsSlash && len(infos) != 0 {
				t.Fatalf("slash-keeping server, listing %q: listed %v, foreign bare keys taken for the replica", bare, infos)
			}
			if !keepsSlash && (len(infos) != 1 || infos[0].Size != 10 || infos[0].Level != 0) {
				t.Fatalf("slash-dropping server, listing %q: listed %v, want the one file", bare, infos)
			}
			if want := []string{"GET /bucket", "GET /bucket", "HEAD /bucket//0000/0000000000000001-0000000000000001.ltx"}; strings.Join(f.requests, ",") != strings.Join(want, ",") {
				t.Fatalf("requests %q, want %q", f.requests, want)
			}
		}
	}
}
