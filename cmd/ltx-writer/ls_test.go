package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestLsManifest: `ls` shows the replica's manifest (TXID, seq, age,
// files), and says when it is missing, invalid, names a file the replica
// lacks, or is stale; a replica written with -no-manifest has none.
func TestLsManifest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	db := openDB(t, path)
	addRows(t, db, 20)
	replica := filepath.Join(dir, "replica")
	c := file.New(replica)
	w, err := writer.New(path, c, writer.Options{SyncInterval: -1, SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	sync := func() {
		t.Helper()
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	ls := func(want ...string) {
		t.Helper()
		code, so, se := runCmd(t, "ls", "-replica", replica)
		if code != 0 {
			t.Fatalf("ls exited %d: %s", code, se)
		}
		for _, w := range want {
			if !strings.Contains(so, w) {
				t.Fatalf("ls does not say %q:\n%s", w, so)
			}
		}
	}
	put := func(b []byte) {
		t.Helper()
		if _, err := c.WriteObject(ctx, manifest.Name, bytes.NewReader(b), storage.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ls("manifest: TXID 0000000000000001 (1), seq 1, published ", " ago (", "), 1 files\n")
	old, _, err := storage.ReadAllObject(ctx, c, manifest.Name, storage.ReadOptions{}, manifest.MaxSize)
	if err != nil {
		t.Fatal(err)
	}
	addRows(t, db, 5)
	sync()
	ls("manifest: TXID 0000000000000002 (2), seq 2", "2 files\n")

	put(old) // a writer that stopped publishing, say
	ls("manifest: TXID 0000000000000001 (1), seq 1", "STALE: the replica restores up to TXID 0000000000000002 (2)")
	put([]byte("not a manifest"))
	ls("manifest: INVALID (readers list the replica instead): invalid manifest: no manifest header")
	if err := c.DeleteObjects(ctx, []string{manifest.Name}); err != nil {
		t.Fatal(err)
	}
	ls("manifest: none (readers list the replica")
	put(old)
	if err := c.DeleteLTXFiles(ctx, listL0(t, c)[:1]); err != nil {
		t.Fatal(err)
	}
	ls("names L0/0000000000000001-0000000000000001.ltx of ", "which the replica does not hold")

	// replicate -no-manifest removes the manifest it finds and writes none.
	put(old)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	put(old)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		done <- run(runCtx, []string{"replicate", "-db", path, "-replica", replica, "-no-manifest", "-sync-interval", "10ms"}, &syncBuffer{}, &stderr)
	}()
	for i := 0; i < 500 && len(listL0(t, c)) < 2; i++ {
		addRows(t, db, 1)
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("replicate -no-manifest exited %d: %s", code, stderr.String())
	}
	if len(listL0(t, c)) < 2 {
		t.Fatal("replicate -no-manifest wrote fewer than 2 L0 files")
	}
	ls("manifest: none (readers list the replica")
}

func listL0(t *testing.T, c storage.Client) []*ltx.FileInfo {
	t.Helper()
	files, err := storage.ListLevel(context.Background(), c, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
