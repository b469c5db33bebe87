package vfs

import (
	"context"
	"slices"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

func seq(lo, hi int64) []int64 {
	var out []int64
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

func TestFollowSeesNewRowsAfterPoll(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) VALUES (1, 'a'), (2, 'b')`)

	db := src.open("poll=1h")
	if got := ints(t, db, `SELECT id FROM t ORDER BY id`); !slices.Equal(got, seq(1, 2)) {
		t.Fatalf("rows = %v, want 1..2", got)
	}
	src.exec(`INSERT INTO t(id, v) VALUES (3, 'c')`)
	if got := ints(t, db, `SELECT id FROM t ORDER BY id`); !slices.Equal(got, seq(1, 2)) {
		t.Fatalf("before a poll: rows = %v, want 1..2 (the version of the last poll)", got)
	}
	pollNow(t, src.key())
	if got := ints(t, db, `SELECT id FROM t ORDER BY id`); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("after a poll: rows = %v, want 1..3", got)
	}
}

// Rule 1: a read transaction sees one TXID, whatever polling does meanwhile.
func TestOpenTransactionKeepsItsSnapshot(t *testing.T) {
	src := newSource(t, 1024)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, printf('%0500d', value) FROM generate_series(1, 50)`)

	db := src.open("poll=1h")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if got := ints(t, conn, `SELECT count(*) FROM t`); got[0] != 50 {
		t.Fatalf("count = %v, want 50", got)
	}
	// New rows, a rewrite of every existing row (so the pages the
	// transaction has not read yet change too), and a poll that sees them.
	src.exec(`INSERT INTO t(id, v) SELECT value, 'new' FROM generate_series(51, 120)`)
	src.exec(`UPDATE t SET v = 'changed'`)
	pollNow(t, src.key())
	if got := ints(t, conn, `SELECT count(*) FROM t`); got[0] != 50 {
		t.Fatalf("same transaction after a poll: count = %v, want 50", got)
	}
	if got := ints(t, conn, `SELECT count(*) FROM t WHERE v = 'changed'`); got[0] != 0 {
		t.Fatalf("same transaction after a poll: %v rows changed, want 0", got)
	}
	if got := one[string](t, conn, `PRAGMA ltx_txid`); got != "2" {
		t.Fatalf("ltx_txid inside the transaction = %s, want 2", got)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if got := ints(t, conn, `SELECT count(*) FROM t WHERE v = 'changed'`); got[0] != 120 {
		t.Fatalf("after COMMIT: %v rows changed, want 120", got)
	}
}

// Rule 2: SQLite's own page cache survives between transactions while the
// TXID is unchanged (a warm query reads nothing from storage), and is
// dropped when it changes.
func TestWarmQueryMakesNoRequests(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, printf('row %d', value) FROM generate_series(1, 2000)`)

	counting := wrap.NewCounting(src.client)
	attach(t, "warm", Options{Client: counting, Poll: 1 << 62})
	db := openDB(t, "file:warm?vfs=ltx")
	db.SetMaxOpenConns(1)

	const q = `SELECT v FROM t WHERE id = 1500`
	if got := one[string](t, db, q); got != "row 1500" {
		t.Fatalf("got %q", got)
	}
	counting.Reset()
	for range 10 {
		if got := one[string](t, db, q); got != "row 1500" {
			t.Fatalf("got %q", got)
		}
	}
	if c := counting.Counts(); c.Requests() != 0 {
		t.Fatalf("10 warm queries on an unchanged replica made %d requests (%+v), want 0", c.Requests(), c)
	}

	src.exec(`UPDATE t SET v = 'changed' WHERE id = 1500`)
	pollNow(t, attachKey("warm"))
	registryMu.Lock()
	cache := replicas[attachKey("warm")].cache
	registryMu.Unlock()
	before := cache.Stats()
	if got := one[string](t, db, q); got != "changed" {
		t.Fatalf("after a new TXID: got %q, want the new value", got)
	}
	// The poll read the new file whole, its pages with it: SQLite's reads
	// are served from the page cache, but they must happen.
	if s := cache.Stats(); s.Hits+s.Misses == before.Hits+before.Misses {
		t.Fatalf("the query after a new TXID read no page through the VFS: SQLite kept stale pages")
	}
}

func attach(tb testing.TB, name string, opts Options) {
	tb.Helper()
	if err := Attach(name, opts); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Detach(name) })
}
