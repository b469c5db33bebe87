package vfs

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestManifestOpenWithDiskTier: a reader with a disk tier that opens a
// replica our writer published reads the manifest, then the hint and page
// 1 (SQLite's first read) at once; started again, it opens and answers a
// query of the schema with the manifest's read alone: the hint and page 1
// come from disk.
func TestManifestOpenWithDiskTier(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "primary.db")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE base(id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "replica")
	w, err := writer.New(path, filereplica.New(dir), writer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for _, q := range []string{
		// Larger than manifest.WholeFileMax: the file gets a hint.
		`INSERT INTO base(b) SELECT randomblob(200) FROM generate_series(1, 8000)`,
		`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`,
		`INSERT INTO t(v) VALUES ('one')`,
	} {
		if _, err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	tier := t.TempDir()
	open := func(run int) wrap.Counts {
		counting := wrap.NewCounting(filereplica.New(dir))
		name := fmt.Sprintf("manifest-open-%d", run)
		if err := Attach(name, Options{Client: counting, Poll: time.Hour, DiskCacheDir: tier}); err != nil {
			t.Fatal(err)
		}
		defer Detach(name)
		db := openDB(t, "file:"+name+"?vfs=ltx")
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name IN ('base', 't')`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("run %d: %d tables, %v; want base and t", run, n, err)
		}
		return counting.Counts()
	}
	first := open(1)
	if first.Lists+first.ObjectLists != 0 || first.Opens != 1 {
		t.Fatalf("first open: %+v; want the manifest, the hint and page 1 read with it, nothing listed", first)
	}
	if again := open(2); again.Requests() != 1 || again.ObjectReads != 1 {
		t.Fatalf("open again with the disk tier: %+v; want the manifest's read alone", again)
	}
}
