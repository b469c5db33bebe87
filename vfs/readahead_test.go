package vfs

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/pagecache"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// stallFixture is coldSource's replica behind storage that can be made to
// hang: while it hangs, every read started waits until its context ends,
// and keeps waiting after storage answers again. Counting sits in front, so
// that the reads under way can be counted.
type stallFixture struct {
	src      *source
	faulty   *wrap.Faulty
	counting *wrap.Counting
	db       *sql.DB
	r        *replica
}

// stallRows is how far the stuck scans read; the pages of rows 1..stallRows
// are in the cache before storage hangs, so the scans need no read.
const stallRows = 1500

func newStallFixture(t *testing.T) *stallFixture {
	t.Helper()
	src := coldSource(t)
	faulty := wrap.NewFaulty(src.client, wrap.FaultyConfig{})
	counting := wrap.NewCounting(faulty)
	db, r := attachColdNamed(t, counting, coldTuning{})
	db.SetMaxOpenConns(3)
	s := &stallFixture{src: src, faulty: faulty, counting: counting, db: db, r: r}

	// Warm the cache with the pages of rows 1..2000, read in descending
	// order, which is not read ahead, on a connection of its own (each
	// connection has its own SQLite page cache).
	warm := conn(t, db)
	if got := ints(t, warm, `SELECT id FROM t WHERE id <= 2000 ORDER BY id DESC`); len(got) != 2000 {
		t.Fatalf("warm-up: %d rows", len(got))
	}
	return s
}

// hang makes the reads started from now on wait until their context ends.
func (s *stallFixture) hang(on bool) {
	var b wrap.Behaviour
	if on {
		b.FirstByte = time.Hour
	}
	s.faulty.SetBehaviour(wrap.OpOpen, b)
}

// stuckScan reads rows 1..stallRows in rowid order with
// context.Background(), on a fresh connection, while storage hangs: every
// page it needs is held, so the rows come at once, but it reads ahead past
// them and those reads hang. It returns once they do, with the rows left
// open (the statement, and its read transaction, go on).
func (s *stallFixture) stuckScan(t *testing.T, q querier) *sql.Rows {
	t.Helper()
	s.hang(true)
	rows, err := q.QueryContext(context.Background(), `SELECT id FROM t WHERE id <= 2000`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rows.Close() }) // before the connection's
	for want := int64(1); want <= stallRows; want++ {
		var id int64
		if !rows.Next() {
			t.Fatalf("row %d: %v", want, rows.Err())
		}
		if err := rows.Scan(&id); err != nil || id != want {
			t.Fatalf("row %d: id %d, %v", want, id, err)
		}
	}
	waitFor(t, "the scan's reads ahead to hang on storage", func() bool { return s.counting.Counts().InFlight > 0 })
	return rows
}

// TestReadaheadEndsWithItsQuery: reads ahead started by a query made with
// context.Background() end when its rows are closed, or when its
// transaction ends: their reads hanging on storage are cancelled.
func TestReadaheadEndsWithItsQuery(t *testing.T) {
	for _, tt := range []struct {
		name string
		tx   bool
	}{{"rows closed", false}, {"transaction ended", true}} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStallFixture(t)
			c := conn(t, s.db)
			var q querier = c
			var tx *sql.Tx
			if tt.tx {
				var err error
				if tx, err = c.BeginTx(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
				q = tx
			}
			rows := s.stuckScan(t, q)
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if tx != nil {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the reads ahead of the ended query to be cancelled", func() bool { return s.counting.Counts().InFlight == 0 })
			if n := s.r.cache.Stats().ReadaheadErrors; n == 0 {
				t.Fatal("no read ahead was cancelled")
			}
		})
	}
}

// TestStuckReadaheadDoesNotBlockOthers: a query that needs pages another
// query's read ahead is bringing, while that read ahead hangs on storage,
// reads them itself, under its own context, and returns while the stuck
// reads are still blocked.
func TestStuckReadaheadDoesNotBlockOthers(t *testing.T) {
	s := newStallFixture(t)
	rows := s.stuckScan(t, conn(t, s.db))
	defer rows.Close()
	s.hang(false) // storage answers again; the reads under way still hang

	const q = `SELECT count(*), sum(length(v)), sum(id) FROM t`
	var want [3]int64
	if err := s.src.db.QueryRow(q).Scan(&want[0], &want[1], &want[2]); err != nil {
		t.Fatal(err)
	}
	// The deadline only keeps the test from hanging where the query would
	// wait for the stuck read ahead: it fails there, with an interrupt.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got [3]int64
	if err := conn(t, s.db).QueryRowContext(ctx, q).Scan(&got[0], &got[1], &got[2]); err != nil {
		t.Fatalf("scan while another query's read ahead hangs: %v", err)
	}
	if got != want {
		t.Fatalf("scan: %v, the primary says %v", got, want)
	}
	if n := s.counting.Counts().InFlight; n == 0 {
		t.Fatal("the stuck reads ended before the scan returned: the test tests nothing")
	}
	if n := s.r.cache.Stats().ReadaheadStuck; n == 0 {
		t.Fatal("the scan never needed a page the stuck read ahead was bringing: the test tests nothing")
	}
	rows.Close()
	waitFor(t, "the stuck reads to be cancelled", func() bool { return s.counting.Counts().InFlight == 0 })
}

// TestReadaheadScope: the context given to reads ahead ends with the
// query's context, or at the end of the transaction for every query of it,
// context.Background() included.
func TestReadaheadScope(t *testing.T) {
	var s raScope
	q1, cancel1 := context.WithCancel(context.Background())
	q2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	c1 := s.context(q1)
	if s.context(q1) != c1 {
		t.Fatal("a second context for the same query")
	}
	bg, c2 := s.context(context.Background()), s.context(q2)
	cancel1()
	waitFor(t, "the reads ahead of a cancelled query to end", func() bool { return c1.Err() != nil })
	if bg.Err() != nil || c2.Err() != nil {
		t.Fatal("the end of one query's context ended the reads ahead of others")
	}
	s.end()
	if bg.Err() == nil || c2.Err() == nil {
		t.Fatal("reads ahead outlive their transaction")
	}
	if s.context(context.Background()).Err() != nil {
		t.Fatal("the next transaction's reads ahead are ended already")
	}
	s.end()
}

// TestReadaheadRunSurvivesPagesFurtherOn: a scan that reads a page further
// on than its leaves (an interior page of its B-tree, held already) and
// then goes on with the leaves before it, still on their way, keeps its
// run: it does not start again from a window of a few pages (which cost a
// full scan of a 64 MiB table 4 waits of a round trip each).
func TestReadaheadRunSurvivesPagesFurtherOn(t *testing.T) {
	src := coldSource(t)
	// Reads ahead stay on their way for the whole test: what decides is
	// where the run thinks they are, not what has landed.
	faulty := wrap.NewFaulty(src.client, wrap.FaultyConfig{})
	db, r := attachColdNamed(t, faulty, coldTuning{})
	if _, err := db.Exec(`SELECT 1`); err != nil { // opened
		t.Fatal(err)
	}
	faulty.SetBehaviour(wrap.OpOpen, wrap.Behaviour{FirstByte: time.Hour}) // reads wait until their context ends
	v := r.latest()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ra readahead
	defer ra.endTransaction()
	key := func(pgno uint32) pagecache.Key {
		e, ok := v.Lookup(pgno)
		if !ok {
			t.Fatalf("page %d is in no file", pgno)
		}
		return pageRef(e, pgno, v.PageSize()).Key
	}
	for pgno := uint32(100); pgno < 110; pgno++ {
		ra.observe(ctx, r, v, key(pgno))
	}
	from := ra.from
	if ra.w.size == 0 || from == 0 {
		t.Fatal("ten pages in a row started no read ahead")
	}
	ra.observe(ctx, r, v, key(uint32(ra.w.ahead)-2)) // further on, within what is on its way
	for pgno := uint32(110); pgno < 120; pgno++ {
		ra.observe(ctx, r, v, key(pgno))
		if ra.from != from || ra.run == 0 {
			t.Fatalf("page %d, behind the page further on, started the run again (from %d, was %d)", pgno, ra.from, from)
		}
	}
}

// TestReadaheadInKeyOrder: a range of an index filled in random key order
// (its leaves all over the file) is read ahead in key order, from the
// children lists of its interior pages: far fewer round trips than one a
// leaf, and the same rows.
func TestReadaheadInKeyOrder(t *testing.T) {
	src := coldSource(t)
	const q = `SELECT count(*), sum(length(k)) FROM t WHERE k BETWEEN 'k20000000' AND 'kd0000000'`
	var want [2]int64
	if err := src.db.QueryRow(q).Scan(&want[0], &want[1]); err != nil {
		t.Fatal(err)
	}
	cost := map[bool]Stats{}
	for _, keyOrder := range []bool{false, true} {
		db := attachCold(t, src.client, coldTuning{noKeyOrder: !keyOrder, noLeafLevel: true})
		c := conn(t, db) // opened: page indexes and hints read
		var got [2]int64
		if err := c.QueryRowContext(t.Context(), q).Scan(&got[0], &got[1]); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("key order %v: %v, the primary says %v", keyOrder, got, want)
		}
		cost[keyOrder] = statsOf(t, c)
	}
	t.Logf("a range of %d index entries: in page order only %v; in key order too %v", want[0], cost[false], cost[true])
	if cost[false].RoundTrips < 50 {
		t.Fatalf("%v without key order: the range does not cover enough leaves to test", cost[false])
	}
	if cost[true].RoundTrips*5 > cost[false].RoundTrips || cost[true].Requests > cost[false].Requests {
		t.Fatalf("read ahead in key order: %v; without: %v", cost[true], cost[false])
	}
}
