package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// startReplicate runs `replicate` with args in the background; the
// channel receives its exit code.
func startReplicate(t *testing.T, args ...string) (<-chan int, *syncBuffer, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"replicate"}, args...), &stdout, &stderr) }()
	return done, &stderr, cancel
}

// waitL0 waits until the replica's L0 holds a file at txid or past it and
// stops growing; it returns the newest TXID.
func waitL0(t *testing.T, c storage.Client, txid ltx.TXID) ltx.TXID {
	t.Helper()
	var last ltx.TXID
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		infos, err := storage.ListLevel(context.Background(), c, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		var newest ltx.TXID
		if len(infos) > 0 {
			newest = infos[len(infos)-1].MaxTXID
		}
		if newest >= txid && newest == last {
			return newest
		}
		last = newest
	}
	t.Fatalf("the replica's L0 did not settle at TXID %s or past it in 20s (at %s)", txid, last)
	return 0
}

// TestReplicateFenced: another writer's file where the next TXID belongs
// (a writer that took the replica over while this one was paused) stops
// `replicate` with exit code 1 and one line that names the file and says
// that the WAL keeps what is not replicated; the file stays as it is.
func TestReplicateFenced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	replica := filepath.Join(dir, "replica")
	db := openDB(t, path)
	addRows(t, db, 20)
	done, stderr, _ := startReplicate(t, "-db", path, "-replica", replica, "-sync-interval", "10ms", "-compaction-intervals", "none")
	c := file.New(replica)
	txid := waitL0(t, c, 1)

	// The other writer's next file: another database's, at txid+1.
	other := storagetest.NewDB(4096)
	var theirs []byte
	for range txid + 1 {
		theirs = other.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(4096, 1, int(other.TXID()))})
	}
	if _, err := c.WriteLTXFile(context.Background(), 0, txid+1, txid+1, bytes.NewReader(theirs)); err != nil {
		t.Fatal(err)
	}
	addRows(t, db, 5)
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("replicate goes on beside another writer's file: %s", stderr.String())
	}
	out := strings.TrimSpace(stderr.String())
	lines := strings.Split(out, "\n")
	last := lines[len(lines)-1]
	name := storage.FileName(0, txid+1, txid+1)
	if code != 1 || !strings.HasPrefix(last, "ltx-writer replicate: "+path+": ") || !strings.Contains(last, "another writer is writing this replica") ||
		!strings.Contains(last, name) || !strings.Contains(last, "WAL keeps what is not replicated") {
		t.Fatalf("exit code %d, last line %q: want 1 and one line naming %s", code, last, name)
	}
	if n := strings.Count(out, "ltx-writer replicate:"); n != 1 {
		t.Fatalf("%d lines of the command's error, want 1:\n%s", n, out)
	}
	if got := storagetest.ReadFile(t, c, 0, txid+1, txid+1); !bytes.Equal(got, theirs) {
		t.Fatalf("the other writer's %s was written over", name)
	}
}

// conditionless puts a server that refuses conditional writes (501 Not
// Implemented to If-None-Match and If-Match, as some S3-compatible
// servers answer) in front of srv.
func conditionless(t *testing.T, srv *s3test.Server) string {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && (r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Match") != "") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// TestReplicateWithoutConditionalWrites: on a server that refuses
// conditional writes, `replicate` refuses to start, in one line that says
// why and names -allow-unfenced; with -allow-unfenced it replicates,
// warning that it runs without a fence, and the replica restores.
func TestReplicateWithoutConditionalWrites(t *testing.T) {
	srv := s3test.Shared(t)
	srv.Setenv(t)
	bucket := srv.NewBucket(t)
	q := url.Values{"endpoint": {conditionless(t, srv)}, "region": {s3test.Region}, "force-path-style": {"true"}}
	replica := "s3://" + bucket + "/app?" + q.Encode()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	db := openDB(t, path)
	addRows(t, db, 20)

	code, _, se := runCmd(t, "replicate", "-db", path, "-replica", replica)
	if code != 1 || strings.Contains(strings.TrimSpace(se), "\n") ||
		!strings.Contains(se, "refusing to replicate") || !strings.Contains(se, "does not implement conditional writes") || !strings.Contains(se, "-allow-unfenced") {
		t.Fatalf("replicate to a server without conditional writes: exit %d, %q; want 1 and a line naming -allow-unfenced", code, se)
	}

	done, stderr, stop := startReplicate(t, "-db", path, "-replica", replica, "-sync-interval", "10ms", "-allow-unfenced")
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stderr.String(), "level=INFO msg=replicating"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("replicate -allow-unfenced did not start: %s", stderr.String())
		}
	}
	addRows(t, db, 5)
	time.Sleep(100 * time.Millisecond)
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("replicate -allow-unfenced exited %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=WARN msg=\"replicating WITHOUT A FENCE") {
		t.Fatalf("no warning that it ran without a fence: %s", stderr.String())
	}
	out := filepath.Join(dir, "restored.db")
	if code, so, se := runCmd(t, "restore", "-replica", replica, "-o", out); code != 0 {
		t.Fatalf("restore exited %d: %s%s", code, so, se)
	}
	if rowsOf(t, out) != rowsOf(t, path) {
		t.Fatal("the unfenced replica restores to other rows than the source's")
	}
}
