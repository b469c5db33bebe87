package vfs

import (
	"context"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/superfly/ltx"
)

// A follower's page cache stays warm across a compaction, the retention
// that removes the compacted L0 files, a replan, and a snapshot: a query
// that read every page reads none again unless the pages changed.
func TestCacheStaysWarmAcrossCompaction(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	for i := range 5 {
		src.exec(`INSERT INTO t(id, v) SELECT value, printf('%0300d', value) FROM generate_series(?, ?)`, i*200+1, i*200+200)
	}
	last := src.pages.TXID()

	counting := wrap.NewCounting(src.client)
	name := "warmth-" + t.Name()
	if err := Attach(name, Options{Client: counting, Poll: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(name) })
	db := openDB(t, "file:"+name+"?vfs=ltx")
	c := conn(t, db)
	scan := func(when string, wantReads int64) {
		t.Helper()
		counting.Reset()
		// SQLite's own cache keeps pages between transactions: make it
		// tiny, so that every page of the scan goes through the VFS.
		if _, err := c.ExecContext(context.Background(), `PRAGMA cache_size = 2`); err != nil {
			t.Fatal(err)
		}
		if got := one[int64](t, c, `SELECT sum(length(v)) FROM t`); got != 1000*300 {
			t.Fatalf("%s: sum = %d", when, got)
		}
		if n := counting.Counts().Opens; n > wantReads {
			t.Fatalf("%s: %d reads from storage, want at most %d", when, n, wantReads)
		}
	}
	scan("first scan", 1000)
	registryMu.Lock()
	cache := replicas[attachKey(name)].cache
	registryMu.Unlock()
	if cache.Stats().Pages < 50 {
		t.Fatalf("%d pages cached after a full scan", cache.Stats().Pages)
	}
	scan("second scan", 0)

	src.compact(1, 2, last)
	pollNow(t, attachKey(name))
	scan("after a compaction", 0)

	var ranges [][2]ltx.TXID
	for txid := ltx.TXID(2); txid <= last; txid++ {
		ranges = append(ranges, [2]ltx.TXID{txid, txid})
	}
	src.remove(0, ranges...)
	pollNow(t, attachKey(name))
	scan("after retention removed the compacted files", 0)

	// A snapshot at a new TXID that rewrote one row's page: that page is
	// read, the others stay.
	src.exec(`UPDATE t SET v = printf('%0300d', 0 + id) WHERE id = 500`)
	src.snapshot()
	pollNow(t, attachKey(name))
	scan("after a snapshot", 3)
}

// A pinned connection whose files retention removed replans when it reads a
// page it does not hold; the pages it holds stay warm through the replan.
func TestCacheStaysWarmAcrossReplan(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	for i := range 4 {
		// Files larger than what an open reads with the page index.
		src.exec(`INSERT INTO t(id, v) SELECT value, randomblob(1000) FROM generate_series(?, ?)`, i*200+1, i*200+200)
	}
	last := src.pages.TXID()
	counting := wrap.NewCounting(src.client)
	name := "warmth-" + t.Name()
	// Without readahead, which would read the half of the table this test
	// keeps unread while the first half is scanned.
	if err := attachTuned(name, Options{Client: counting, Poll: time.Hour}, coldTuning{noReadahead: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(name) })
	c := conn(t, openDB(t, "file:"+name+"?vfs=ltx&txid="+ltx.TXID(last).String()))
	if _, err := c.ExecContext(context.Background(), `PRAGMA cache_size = 2`); err != nil {
		t.Fatal(err)
	}
	count := func(query string) int64 {
		t.Helper()
		counting.Reset()
		var n int64
		if err := c.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return counting.Counts().Opens
	}
	count(`SELECT sum(length(v)) FROM t WHERE id <= 400`) // half the table cached

	src.compact(1, 1, last)
	var ranges [][2]ltx.TXID
	for txid := ltx.TXID(1); txid <= last; txid++ {
		ranges = append(ranges, [2]ltx.TXID{txid, txid})
	}
	src.remove(0, ranges...)
	// The other half was never read: its first page fails, the TXID is
	// rebuilt from the L1, and the rest of the table is read from it.
	if n := count(`SELECT sum(length(v)) FROM t`); n == 0 {
		t.Fatal("the half of the table never read came from the cache: the test measures nothing")
	}
	if n := count(`SELECT sum(length(v)) FROM t WHERE id <= 400`); n != 0 {
		t.Fatalf("the half of the table read before the replan: %d reads from storage after it, want 0", n)
	}
	if n := count(`SELECT sum(length(v)) FROM t`); n != 0 {
		t.Fatalf("the whole table: %d reads from storage, want 0", n)
	}
}
