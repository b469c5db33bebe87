package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// createServer is a fake S3 that keeps the objects PUT to it and honours
// If-None-Match: *, or answers it with 501 (refuse), for the create-only
// LTX uploads.
type createServer struct {
	mu      sync.Mutex
	objects map[string][]byte
	refuse  bool // 501 to any conditional PUT
	// lose is how many PUTs that land get a 500 instead of their answer:
	// the SDK retries them.
	lose int
	puts []string // "cond" or "plain", per PUT
}

func (s *createServer) handle(_ int, w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.URL.Path
	switch r.Method {
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		cond := r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Match") != ""
		s.puts = append(s.puts, map[bool]string{true: "cond", false: "plain"}[cond])
		if cond && s.refuse {
			s3Error(w, http.StatusNotImplemented, "NotImplemented")
			return
		}
		if _, ok := s.objects[key]; ok && r.Header.Get("If-None-Match") == "*" {
			s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		s.objects[key] = body
		if s.lose > 0 {
			s.lose--
			s3Error(w, http.StatusInternalServerError, "InternalError")
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, len(s.puts)))
	case http.MethodGet:
		b, ok := s.objects[key]
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Write(b)
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
	}
}

// TestCreateOnlyUpload: an LTX upload never replaces an object. The SDK's
// retry of a PUT that landed though its answer was lost finds its own
// bytes (412, read back): a success. Other bytes under the name fail with
// storage.ErrFileExists and stay as they were.
func TestCreateOnlyUpload(t *testing.T) {
	ctx := context.Background()
	mine := ltxFiles(t, 1)[0]
	theirs := storagetest.NewDB(4096).Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(4096, 1, 99)})
	srv := &createServer{objects: map[string][]byte{}, lose: 1}
	c, _ := fakeClient(t, "db", 5, srv.handle)
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(mine)); err != nil {
		t.Fatalf("an upload whose first answer was lost: %v, want success (its retry finds its own bytes)", err)
	}
	if want := []string{"cond", "cond"}; fmt.Sprint(srv.puts) != fmt.Sprint(want) {
		t.Fatalf("PUTs %v, want %v: every upload conditional", srv.puts, want)
	}
	_, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(theirs))
	if !errors.Is(err, storage.ErrFileExists) || !strings.Contains(err.Error(), "0000000000000001-0000000000000001.ltx") {
		t.Fatalf("another writer's upload of the same TXID: %v, want storage.ErrFileExists naming the file", err)
	}
	if got := srv.objects["/bucket/db/0000/0000000000000001-0000000000000001.ltx"]; !bytes.Equal(got, mine) {
		t.Fatal("the refused upload replaced the file")
	}
}

// TestCreateOnServerWithoutConditionalWrites: a server that answers 501
// to If-None-Match fails an upload with an error that says so
// (storage.ErrNoConditionalWrites). Once the lease found that out (and
// told the writer), uploads go without the condition.
func TestCreateOnServerWithoutConditionalWrites(t *testing.T) {
	ctx := context.Background()
	file := ltxFiles(t, 1)[0]
	srv := &createServer{objects: map[string][]byte{}, refuse: true}
	c, _ := fakeClient(t, "db", 1, srv.handle)
	_, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(file))
	if !errors.Is(err, storage.ErrNoConditionalWrites) || !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "If-None-Match") {
		t.Fatalf("upload to a server that refuses If-None-Match: %v, want storage.ErrNoConditionalWrites", err)
	}
	_, err = c.AcquireLease(ctx, lease.Holder{Owner: "writer"}, time.Second)
	if !errors.Is(err, storage.ErrNoConditionalWrites) {
		t.Fatalf("AcquireLease = %v, want storage.ErrNoConditionalWrites", err)
	}
	srv.puts = nil
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(file)); err != nil {
		t.Fatalf("upload after the lease found no conditional writes: %v", err)
	}
	if fmt.Sprint(srv.puts) != "[plain]" {
		t.Fatalf("PUTs %v, want one unconditional", srv.puts)
	}
}
