package restore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	_ "github.com/ltxvfs/ltxvfs/storage/http"
	"github.com/ltxvfs/ltxvfs/writer"
)

// A replica served by a web server, which cannot be listed, restores from
// its manifest: at its newest TXID, and at a TXID its plan passes through;
// a TXID it does not pass through is a clear error.
func TestRestoreOverHTTP(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, root := filepath.Join(dir, "app.db"), filepath.Join(dir, "www")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	w, err := writer.New(path, file.New(filepath.Join(root, "app")), writer.Options{SyncInterval: -1, SnapshotInterval: -1, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	var txids []uint64
	for i := range 3 {
		if _, err := app.Exec(`INSERT INTO t(v) SELECT hex(randomblob(100)) FROM generate_series(1, ?)`, 100*(i+1)); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		txids = append(txids, uint64(w.TXID()))
	}
	var want int
	if err := app.QueryRow(`SELECT count(*) FROM t`).Scan(&want); err != nil {
		t.Fatal(err)
	}

	srv := nginxtest.Start(t, nginxtest.Config{Root: root})
	c, err := storage.Open(ctx, srv.URL+"/app")
	if err != nil {
		t.Fatal(err)
	}
	count := func(res *restore.Result, dst string) int {
		db, err := sql.Open("sqlite3", "file:"+dst+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	dst := filepath.Join(t.TempDir(), "restored.db")
	res, err := restore.Run(ctx, c, dst, restore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(res, dst); n != want || uint64(res.TXID) != txids[2] {
		t.Fatalf("restored TXID %d with %d rows, want TXID %d with %d", res.TXID, n, txids[2], want)
	}
	dst = filepath.Join(t.TempDir(), "at.db")
	if res, err = restore.Run(ctx, c, dst, restore.Options{TXID: 1}); err != nil {
		t.Fatalf("restore at TXID 1, the start of the manifest's plan: %v", err)
	}
	if _, err := restore.Run(ctx, c, filepath.Join(t.TempDir(), "x.db"), restore.Options{TXID: 1 << 40}); err == nil {
		t.Fatal("restored a TXID beyond the replica")
	}
}
