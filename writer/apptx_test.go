package writer_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/ltxvfs/ltxvfs/writer"
)

// The README's advice to applications, checked: the writer's checkpoint
// commits a row to its sequence table, so an application transaction that
// read before the checkpoint and writes after it fails with SQLITE_BUSY
// (its snapshot is stale); begun with BEGIN IMMEDIATE, which the ncruces
// driver's db.Begin() is by default from v0.37 on, it holds the write lock
// from the start, the checkpoint gives way, and the write commits.
func TestApplicationTransactionsAcrossACheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path) // no _txlock: the driver's default
	deferred, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_txlock=deferred")
	if err != nil {
		t.Fatal(err)
	}
	defer deferred.Close()
	c := newReplica(t)
	opts := testOpts()
	// How long the writer's checkpoint waits for the application's write
	// lock before it skips this turn.
	opts.BusyTimeout = 50 * time.Millisecond
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)
	insert(t, app, 10)
	mustSync(t, r)

	// readThenWrite reads, lets the writer checkpoint, then writes.
	readThenWrite := func(db *sql.DB) error {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := r.Checkpoint(ctx, writer.CheckpointPassive); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		if _, err := tx.Exec(`INSERT INTO t (v, n) VALUES ('read-then-write', ?)`, n); err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := readThenWrite(deferred); !errors.Is(err, sqlite3.BUSY) {
		t.Fatalf("_txlock=deferred: a transaction that read before the writer's checkpoint and wrote after it: %v, want SQLITE_BUSY", err)
	}
	if err := readThenWrite(app); err != nil {
		t.Fatalf("db.Begin() with the driver's default (BEGIN IMMEDIATE): %v", err)
	}
	var n int
	if err := app.QueryRow(`SELECT count(*) FROM t WHERE v = 'read-then-write'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows the two transactions committed: %d, %v; want 1", n, err)
	}
	mustSync(t, r)
	checkRestores(t, c, app, "the replica does not restore to the application's database")
}
