package vfs

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// statsSource is coldSource's table t (20,000 rows in 1 KiB pages, an
// index on a hashed key) with a second table u to join with it, as a
// snapshot with its hint. It is built once for the tests that read it
// (each through a client and replica of its own): building it is most of
// their time, under -race most of all.
func statsSource(t *testing.T) *source {
	t.Helper()
	statsShared.once.Do(func() {
		src := newSource(&keptTB{TB: t}, 1024)
		src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)`)
		src.exec(`CREATE INDEX t_k ON t(k)`)
		src.exec(`CREATE TABLE u(id INTEGER PRIMARY KEY, t_id INTEGER, w TEXT)`)
		src.exec(`INSERT INTO t(id, k, v) SELECT value, printf('k%08x', (value*2654435761) % 4294967296), randomblob(80) FROM generate_series(1, 20000)`)
		src.exec(`INSERT INTO u(id, t_id, w) SELECT value, (value*7919) % 20000 + 1, printf('w%d', value) FROM generate_series(1, 2000)`)
		src.snapshot()
		if err := writeColdHint(src.dir); err != nil {
			t.Fatal(err)
		}
		statsShared.src = src
	})
	if statsShared.src == nil {
		t.Fatal("the shared source failed")
	}
	return statsShared.src
}

var statsShared struct {
	once sync.Once
	src  *source
}

// costQueries are the queries whose cost the tests and figures look at.
var costQueries = []struct{ name, sql string }{
	{"point", `SELECT sum(length(v)) FROM t WHERE id = 12345`},
	{"index range", `SELECT count(*) + sum(id) FROM t WHERE k >= 'k10000000' AND k < 'k14000000'`},
	{"join", `SELECT count(*) + sum(length(t.v)) FROM u JOIN t ON t.id = u.t_id WHERE u.id BETWEEN 100 AND 199`},
	{"full scan", `SELECT count(*) + sum(length(v)) FROM t`},
}

var statsSeq int

// openStats attaches client under a new name and opens one connection to
// it with the DSN parameters extra, its schema read.
func openStats(t *testing.T, client storage.Client, tune coldTuning, extra string) (*sql.DB, *sql.Conn) {
	t.Helper()
	statsSeq++
	name := fmt.Sprintf("stats-test-%d", statsSeq)
	attach(t, name, Options{Client: client, Poll: time.Hour, cold: tune})
	db := openDB(t, "file:"+name+"?vfs=ltx"+extra)
	c := conn(t, db)
	if got := one[int64](t, c, `SELECT count(*) FROM sqlite_schema`); got != 3 {
		t.Fatalf("schema: %d entries", got)
	}
	return db, c
}

// statsOf reads PRAGMA ltx_stats on c.
func statsOf(t *testing.T, c *sql.Conn) Stats {
	t.Helper()
	text := one[string](t, c, `PRAGMA ltx_stats`)
	s, err := ParseStats(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStatsMatchStorage: after each query, cold, ltx_stats shows the
// requests and bytes storage saw for it; each page it missed was one wait
// (no read ahead but in the scan); on another connection, with the shared
// page cache warm, the query costs no request.
func TestStatsMatchStorage(t *testing.T) {
	src := statsSource(t)
	for _, q := range costQueries {
		t.Run(q.name, func(t *testing.T) {
			counting := storagetest.NewCounting(src.client)
			db, c := openStats(t, counting, coldTuning{}, "")
			want := one[int64](t, src.db, q.sql)
			counting.Reset()
			if got := one[int64](t, c, q.sql); got != want {
				t.Fatalf("%d, the primary says %d", got, want)
			}
			s := statsOf(t, c)
			cs := counting.Counts()
			t.Logf("%s: %v", q.name, s)
			if s.Requests != cs.Requests() || s.Bytes != cs.BytesRead {
				t.Fatalf("ltx_stats says %d requests of %d bytes; storage saw %d of %d", s.Requests, s.Bytes, cs.Requests(), cs.BytesRead)
			}
			// A scan may wait for nothing: its reads ahead can land before
			// it asks for their pages.
			if s.Requests == 0 || s.CacheHits+s.CacheMisses == 0 || (s.RoundTrips == 0 && q.name != "full scan") {
				t.Fatalf("a cold query cost %v: the test tests nothing", s)
			}
			if s.RoundTrips > s.Requests || s.DiskHits != 0 {
				t.Fatalf("%v: more round trips than requests, or disk hits without a disk tier", s)
			}
			if q.name != "full scan" && (s.RoundTrips != s.CacheMisses || s.Requests != s.CacheMisses) {
				t.Fatalf("%v: want one request and one wait per page missed", s)
			}
			if again := statsOf(t, c); again != s {
				t.Fatalf("read again, ltx_stats says %v, was %v", again, s)
			}

			other := conn(t, db)
			counting.Reset()
			if got := one[int64](t, other, q.sql); got != want {
				t.Fatalf("warm: %d, the primary says %d", got, want)
			}
			if w := statsOf(t, other); w.Requests != 0 || w.Bytes != 0 || w.RoundTrips != 0 || w.CacheMisses != 0 || w.CacheHits < s.CacheMisses {
				t.Fatalf("on another connection, warm: %v, want hits only (at least the %d pages the first one missed)", w, s.CacheMisses)
			}
			if n := counting.Counts().Requests(); n != 0 {
				t.Fatalf("warm: storage saw %d requests", n)
			}
		})
	}
}

// TestStatsRoundTripsOfReadsAhead: a scan that waits for its first read
// ahead (held back a while by storage) counts the wait as a round trip,
// though the page it waited for counts as a hit, and waits no more than
// once a request.
func TestStatsRoundTripsOfReadsAhead(t *testing.T) {
	src := statsSource(t)
	slow := &slowFirstBigRead{Client: src.client}
	_, c := openStats(t, slow, coldTuning{noFrames: true}, "")
	slow.armed.Store(true) // past the open's reads of page indexes
	one[int64](t, c, fullScan)
	s := statsOf(t, c)
	t.Logf("full scan, its first read ahead held back: %v", s)
	if s.RoundTrips <= s.CacheMisses || s.RoundTrips > s.Requests {
		t.Fatalf("%v: want a round trip for each miss and for the read ahead waited for, and no more than one a request", s)
	}
}

// slowFirstBigRead, once armed, holds its first read of more than a few
// pages for 100 ms: the first read ahead of a scan, which the scan then
// waits for, since it asks for the next page at once.
type slowFirstBigRead struct {
	storage.Client
	armed atomic.Bool
	once  sync.Once
}

func (c *slowFirstBigRead) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	if size > 8<<10 && c.armed.Load() {
		c.once.Do(func() {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		})
	}
	return c.Client.OpenLTXFile(ctx, level, min, max, off, size)
}

// TestStatsDiskHits: a process started again with the disk tier finds the
// pages an earlier one read there: its lookups miss the page cache, hit
// the disk, and cost no request and no round trip.
func TestStatsDiskHits(t *testing.T) {
	src := statsSource(t)
	tier := t.TempDir()
	q := costQueries[2].sql // the join: random lookups
	run := func() Stats {
		statsSeq++
		name := fmt.Sprintf("stats-disk-%d", statsSeq)
		if err := Attach(name, Options{Client: src.client, Poll: time.Hour, DiskCacheDir: tier}); err != nil {
			t.Fatal(err)
		}
		defer Detach(name)
		db := openDB(t, "file:"+name+"?vfs=ltx")
		defer db.Close()
		c := conn(t, db)
		defer c.Close()
		one[int64](t, c, q)
		return statsOf(t, c)
	}
	first := run()
	if first.Requests == 0 || first.DiskHits != 0 {
		t.Fatalf("first process: %v", first)
	}
	again := run()
	if again.Requests != 0 || again.RoundTrips != 0 || again.DiskHits == 0 || again.DiskHits != again.CacheMisses {
		t.Fatalf("started again: %v, want every miss a disk hit and no request (the first: %v)", again, first)
	}
}

// TestStatsWaitForReadsUnderWay: the figures of a statement that ended
// with a read under way (a read ahead it cancelled, its body still being
// read) include that read's bytes once it finishes: PRAGMA ltx_stats waits
// for it (up to statsSettle).
func TestStatsWaitForReadsUnderWay(t *testing.T) {
	st := newStatement(budget{})
	if err := st.start(4096); err != nil {
		t.Fatal(err)
	}
	st.end()
	if err := st.start(4096); err == nil {
		t.Fatal("a request for a statement that ended was let through")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		reserved := int64(4096)
		st.read(4096, &reserved)
		st.finish(reserved)
	}()
	if s := st.stats(context.Background()); s.Requests != 1 || s.Bytes != 4096 {
		t.Fatalf("%v, want the request under way at the end and its 4096 bytes", s)
	}
}
