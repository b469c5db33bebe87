package vfs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ncruces/go-sqlite3"
)

// Rule 7: a fetch is bounded by the query's context. Storage here answers
// after an hour: the query returns only because its context ends.
func TestQueryContextBoundsFetches(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, hex(randomblob(100)) FROM generate_series(1, 3000)`)
	slow := wrap.NewFaulty(src.client, wrap.FaultyConfig{})
	attach(t, "slow", Options{Client: slow, Poll: time.Hour})
	db := openDB(t, "file:slow?vfs=ltx")
	db.SetMaxOpenConns(1)
	if got := ints(t, db, `SELECT count(*) FROM sqlite_schema`); got[0] != 1 {
		t.Fatal(got)
	}
	slow.SetBehaviour(wrap.OpOpen, wrap.Behaviour{FirstByte: time.Hour})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var n int64
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE v LIKE '%AB%'`).Scan(&n)
	t.Logf("deadline: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, sqlite3.INTERRUPT) {
		t.Fatalf("query past its deadline over slow storage: %v, want an interrupt or deadline error", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	err = db.QueryRowContext(ctx, `SELECT max(v) FROM t`).Scan(new(string))
	t.Logf("cancel: %v", err)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, sqlite3.INTERRUPT) {
		t.Fatalf("cancelled query over slow storage: %v, want an interrupt or cancellation error", err)
	}

	// The connection is usable again once storage is.
	slow.SetBehaviour(wrap.OpOpen, wrap.Behaviour{})
	if got := ints(t, db, `SELECT count(*) FROM t`); got[0] != 3000 {
		t.Fatalf("after the interrupts: %v rows, want 3000", got)
	}
}
