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
	"github.com/ltxvfs/ltxvfs/storage/wrap"
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
	attachTunedT(t, name, Options{Client: client, Poll: time.Hour}, tune)
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
// requests and bytes storage saw for it; each page the point lookup missed
// was one wait (the others read ahead); on another connection, with the
// shared page cache warm, the query costs no request.
func TestStatsMatchStorage(t *testing.T) {
	src := statsSource(t)
	for _, q := range costQueries {
		t.Run(q.name, func(t *testing.T) {
			counting := wrap.NewCounting(src.client)
			db, c := openStats(t, counting, coldTuning{}, "")
			want := one[int64](t, src.db, q.sql)
			counting.Reset()
			if got := one[int64](t, c, q.sql); got != want {
				t.Fatalf("%d, the primary says %d", got, want)
			}
			s := statsOf(t, c)
			cs := counting.Counts()
			t.Logf("%s: %v", q.name, s)
			readsAhead := q.name != "point" // the index read whole (leaflevel.go), the join, the scan
			if s.Requests != cs.Requests() || s.Bytes != cs.BytesRead {
				t.Fatalf("ltx_stats says %d requests of %d bytes; storage saw %d of %d", s.Requests, s.Bytes, cs.Requests(), cs.BytesRead)
			}
			// A scan may wait for nothing: its reads ahead can land before
			// it asks for their pages.
			if s.Requests == 0 || s.CacheHits+s.CacheMisses == 0 || (s.RoundTrips == 0 && !readsAhead) {
				t.Fatalf("a cold query cost %v: the test tests nothing", s)
			}
			if s.RoundTrips > s.Requests || s.DiskHits != 0 {
				t.Fatalf("%v: more round trips than requests, or disk hits without a disk tier", s)
			}
			if !readsAhead && (s.RoundTrips != s.CacheMisses || s.Requests != s.CacheMisses) {
				t.Fatalf("%v: want one request and one wait per page missed", s)
			}
			if again := statsOf(t, c); again != s {
				t.Fatalf("read again, ltx_stats says %v, was %v", again, s)
			}
			// Again on the same connection: SQLite's own page cache serves
			// what it holds, and the figures are this run's, not the last.
			one[int64](t, c, q.sql)
			if again := statsOf(t, c); again.Requests != 0 || again.CacheMisses != 0 || (q.name != "full scan" && again != Stats{}) {
				t.Fatalf("run again on the same connection: %v, want nothing read (the first run: %v)", again, s)
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

// TestStatsRoundTripsOfReadsAhead: a scan whose first pages and interior
// pages came with the open waits only for its reads ahead; the first one
// held back a while by storage, it waits at least once, and its round
// trips are no more than the chain of requests storage saw.
func TestStatsRoundTripsOfReadsAhead(t *testing.T) {
	src := statsSource(t)
	slow := &slowFirstBigRead{Client: src.client}
	chain := &roundsClient{Client: slow}
	_, c := openStats(t, chain, coldTuning{}, "")
	slow.armed.Store(true) // past the open's reads of page indexes
	chain.Reset()
	one[int64](t, c, fullScan)
	s := statsOf(t, c)
	t.Logf("full scan, its first read ahead held back: %v; storage saw a chain of %d", s, chain.Rounds())
	if s.CacheMisses != 0 {
		t.Fatalf("%v: the scan missed pages: the test does not isolate reads ahead", s)
	}
	if s.RoundTrips == 0 || s.RoundTrips > int64(chain.Rounds()) {
		t.Fatalf("%v: want at least the wait for the read ahead held back, at most the chain storage saw (%d)", s, chain.Rounds())
	}
}

// TestStatsRoundTripsChain: waits for reads made in parallel are one round
// trip; a wait for a read that started after an earlier wait ended is one
// more, whenever it happens.
func TestStatsRoundTripsChain(t *testing.T) {
	st := newStatement(budget{})
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	for _, w := range []struct {
		since, end int
		rounds     int64
	}{
		{0, 10, 1},  // a read ahead of two requests, sent at 0: waits for the first
		{0, 12, 1},  // and for the second, sent with it
		{11, 30, 2}, // a read sent after the first wait ended
		{5, 31, 2},  // one sent before it: overlapped with it
		{31, 50, 3}, // its own read, after all of them
		{40, 60, 3}, // sent during that wait
		{50, 70, 4},
	} {
		st.waited(at(w.since), at(w.end), nil)
		if st.rounds != w.rounds {
			t.Fatalf("after a wait %d..%d ms: %d round trips, want %d", w.since, w.end, st.rounds, w.rounds)
		}
	}
	for i := range 2 * keptWaits { // a long scan's waits, one after another
		st.waited(at(100+2*i), at(101+2*i), nil)
	}
	if st.rounds != 4+2*keptWaits || len(st.waits) > keptWaits {
		t.Fatalf("after %d waits one after another: %d round trips (%d waits kept)", 2*keptWaits, st.rounds, len(st.waits))
	}
}

// slowFirstBigRead, once armed, holds its first read of more than a few
// pages for 300 ms: the first read ahead of a scan, which the scan reaches
// well before (even under -race: its pages are a few dozen pages on).
type slowFirstBigRead struct {
	storage.Client
	armed atomic.Bool
	once  sync.Once
}

func (c *slowFirstBigRead) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	if size > 8<<10 && c.armed.Load() {
		c.once.Do(func() {
			select {
			case <-time.After(300 * time.Millisecond):
			case <-ctx.Done():
			}
		})
	}
	return c.Client.OpenLTXFile(ctx, level, min, max, off, size)
}

// TestStatsDiskHits: a process started again with the disk tier finds the
// pages an earlier one read there: its lookups miss the page cache, hit
// the disk, and cost no request and no round trip. With the join read
// ahead, the pages read ahead and read are on the disk too (the second
// process reads them ahead from there); those read ahead past the rows the
// query wanted were never written, and cost a few requests.
func TestStatsDiskHits(t *testing.T) {
	src := statsSource(t)
	q := costQueries[2].sql // the join: random lookups
	for _, join := range []bool{false, true} {
		tier := t.TempDir()
		run := func() Stats {
			statsSeq++
			name := fmt.Sprintf("stats-disk-%d", statsSeq)
			attachTunedT(t, name, Options{Client: src.client, Poll: time.Hour, DiskCacheDir: tier}, coldTuning{noJoin: !join})
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
			t.Fatalf("join read ahead %v, first process: %v", join, first)
		}
		again := run()
		t.Logf("join read ahead %v: first %v; started again %v", join, first, again)
		if again.DiskHits != again.CacheMisses || again.CacheHits+again.DiskHits < first.CacheMisses {
			t.Fatalf("join read ahead %v, started again: %v, want every miss a disk hit (the first: %v)", join, again, first)
		}
		if !join && (again.Requests != 0 || again.RoundTrips != 0 || again.DiskHits == 0) {
			t.Fatalf("started again: %v, want no request (the first: %v)", again, first)
		}
		if join && (again.Requests*2 > first.Requests || again.Bytes*2 > first.Bytes) {
			t.Fatalf("join read ahead, started again: %v, want few requests (the first: %v)", again, first)
		}
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

// TestStatsPerSchema: each schema counts its own reads: a lookup in an
// ATTACHed replica shows in PRAGMA old.ltx_stats, not in main's.
func TestStatsPerSchema(t *testing.T) {
	src := statsSource(t)
	counting := wrap.NewCounting(src.client)
	_, c := openStats(t, src.client, coldTuning{}, "")
	statsSeq++
	name := fmt.Sprintf("stats-old-%d", statsSeq)
	attach(t, name, Options{Client: counting, Poll: time.Hour})
	if _, err := c.ExecContext(context.Background(), `ATTACH 'file:`+name+`?vfs=ltx' AS old`); err != nil {
		t.Fatal(err)
	}
	want := one[int64](t, src.db, costQueries[0].sql)
	counting.Reset()
	if got := one[int64](t, c, `SELECT sum(length(v)) FROM old.t WHERE id = 12345`); got != want {
		t.Fatalf("%d, the primary says %d", got, want)
	}
	main := one[string](t, c, `PRAGMA main.ltx_stats`)
	old, err := ParseStats(one[string](t, c, `PRAGMA old.ltx_stats`))
	if err != nil {
		t.Fatal(err)
	}
	if old.Requests == 0 || old.Requests != counting.Counts().Requests() {
		t.Fatalf("old: %v; its storage saw %d requests", old, counting.Counts().Requests())
	}
	if main != (Stats{}).String() {
		t.Fatalf("main: %s, want nothing read there", main)
	}
}
