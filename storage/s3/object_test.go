package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
)

// TestObjectKeys: objects live under <prefix>/ltxvfs/, and under ltxvfs/
// (no leading slash) with an empty prefix; DeleteAll removes everything
// there, foreign keys included, and nothing beside it.
func TestObjectKeys(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Shared(t)
	r := srv.NewReplica(t)
	for _, name := range []string{"manifest", "hints/a"} {
		if _, err := r.Client.WriteObject(ctx, name, strings.NewReader(name), storage.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(keys(t, r), " "); got != "db/ltxvfs/hints/a db/ltxvfs/manifest" {
		t.Fatalf("the bucket holds %s", got)
	}
	put(t, r, "db/ltxvfs/upload in progress", []byte("x"), nil)
	put(t, r, "db/ltxvfs-old/manifest", []byte("x"), nil)
	infos, err := r.Client.ListObjects(ctx, "")
	if err != nil || len(infos) != 2 {
		t.Fatalf("listed %+v (%v), want the 2 objects written: a key that is no object name is not one", infos, err)
	}
	if err := r.Client.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(t, r), " "); got != "db/ltxvfs-old/manifest" {
		t.Fatalf("after DeleteAll the bucket holds %s", got)
	}

	bucket := srv.NewBucket(t)
	bare := &s3test.Replica{Client: srv.Client(t, srv.URL(bucket, "")), SDK: r.SDK, Bucket: bucket}
	if _, err := bare.Client.WriteObject(ctx, "manifest", strings.NewReader("m"), storage.WriteOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(t, bare), " "); got != "ltxvfs/manifest" {
		t.Fatalf("with an empty prefix the bucket holds %s", got)
	}
	if infos, err := bare.Client.ListObjects(ctx, ""); err != nil || len(infos) != 1 || infos[0].Name != "manifest" {
		t.Fatalf("with an empty prefix: listed %+v (%v)", infos, err)
	}
}

// TestObjectRequests: the conditions reach the server as S3 headers, and
// its answers map to the storage errors: 412 and AWS's 409
// ConditionalRequestConflict to ErrPreconditionFailed, 501 to
// errors.ErrUnsupported, 304 to ErrNotModified.
func TestObjectRequests(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		status int
		code   string
		want   error
	}{
		{"412", http.StatusPreconditionFailed, "PreconditionFailed", storage.ErrPreconditionFailed},
		{"409", http.StatusConflict, "ConditionalRequestConflict", storage.ErrPreconditionFailed},
		{"501", http.StatusNotImplemented, "NotImplemented", errors.ErrUnsupported},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ifMatch string
			c, _ := fakeClient(t, "db", 1, func(_ int, w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPut || r.URL.Path != "/bucket/db/ltxvfs/manifest" {
					t.Errorf("%s %s, want a PUT of the manifest", r.Method, r.URL.Path)
				}
				ifMatch = r.Header.Get("If-Match")
				s3Error(w, tt.status, tt.code)
			})
			_, err := c.WriteObject(ctx, "manifest", strings.NewReader("m"), storage.WriteOptions{IfMatch: `"e1"`})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "s3://bucket/db/ltxvfs/manifest") {
				t.Fatalf("got %v, want %v naming the object", err, tt.want)
			}
			if ifMatch != `"e1"` {
				t.Fatalf("If-Match %q reached the server", ifMatch)
			}
		})
	}

	t.Run("IfNoneMatch", func(t *testing.T) {
		c, _ := fakeClient(t, "db", 1, func(_ int, w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodPut && r.Header.Get("If-None-Match") != "*":
				t.Errorf("PUT with If-None-Match %q, want *", r.Header.Get("If-None-Match"))
			case r.Method == http.MethodGet && r.Header.Get("If-None-Match") != `"e1"`:
				t.Errorf("GET with If-None-Match %q, want \"e1\"", r.Header.Get("If-None-Match"))
			case r.Method == http.MethodGet:
				w.Header().Set("ETag", `"e1"`)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
		})
		if _, err := c.WriteObject(ctx, "manifest", strings.NewReader("m"), storage.WriteOptions{IfNoneMatch: true}); !errors.Is(err, storage.ErrPreconditionFailed) {
			t.Fatalf("create: got %v, want ErrPreconditionFailed", err)
		}
		rc, info, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{IfNoneMatch: `"e1"`})
		if !errors.Is(err, storage.ErrNotModified) || rc != nil || info.ETag != `"e1"` {
			t.Fatalf("read: got %v (body %v, ETag %s), want ErrNotModified", err, rc != nil, info.ETag)
		}
	})

	// A server that ignores If-None-Match sends the body with the ETag
	// asked about: that is no newer object.
	t.Run("IgnoredIfNoneMatch", func(t *testing.T) {
		c, _ := fakeClient(t, "db", 1, func(_ int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"e1"`)
			io.WriteString(w, "old")
		})
		if _, _, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{IfNoneMatch: `"e1"`}); !errors.Is(err, storage.ErrNotModified) {
			t.Fatalf("got %v, want ErrNotModified", err)
		}
		b, info, err := storage.ReadAllObject(ctx, c, "manifest", storage.ReadOptions{IfNoneMatch: `"e0"`}, 100)
		if err != nil || string(b) != "old" || info.ETag != `"e1"` || info.Size != 3 {
			t.Fatalf("with another ETag: %q, %+v, %v", b, info, err)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		c, _ := fakeClient(t, "db", 1, func(_ int, w http.ResponseWriter, r *http.Request) {
			s3Error(w, http.StatusNotFound, "NoSuchKey")
		})
		if _, _, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read: got %v, want os.ErrNotExist", err)
		}
		// AWS answers an If-Match on a missing key with 404.
		if _, err := c.WriteObject(ctx, "manifest", bytes.NewReader(nil), storage.WriteOptions{IfMatch: `"e1"`}); !errors.Is(err, storage.ErrPreconditionFailed) {
			t.Fatalf("swap: got %v, want ErrPreconditionFailed", err)
		}
	})
}
