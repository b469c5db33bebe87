package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestRestoreNamesTheDamagedFile: `ltx-writer restore` over TXIDs 1-8 of a
// replica whose L0 file of TXID 7 was changed in place (same size) exits 1
// with one line naming that file, and no other, and writes no database.
func TestRestoreNamesTheDamagedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	db := openDB(t, path)
	replica := file.New(filepath.Join(dir, "replica"))
	w, err := writer.New(path, replica, writer.Options{SyncInterval: -1, SnapshotInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for w.TXID() < 8 {
		addRows(t, db, 20)
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	damaged := storage.FilePath(replica.Root(), 0, 7, 7)
	b, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name string
		at   int
	}{{"a page", len(b) / 2}, {"the file checksum", len(b) - 1}} {
		bad := append([]byte(nil), b...)
		bad[d.at] ^= 0x20
		if err := os.WriteFile(damaged, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "restored.db")
		code, stdout, stderr := runCmd(t, "restore", "-replica", replica.String(), "-o", out, "-txid", "8")
		if code != 1 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Fatalf("%s damaged: exit %d, stdout %q, stderr %q; want exit 1 and one line", d.name, code, stdout, stderr)
		}
		want := storage.FileName(0, 7, 7)
		names := regexp.MustCompile(`L\d/[0-9a-f]{16}-[0-9a-f]{16}\.ltx`).FindAllString(stderr, -1)
		if len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return n != want }) {
			t.Errorf("%s of TXID 7 damaged: restore names %v, want %s only: %s", d.name, names, want, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s damaged: restore left %s", d.name, out)
		}
	}
}
