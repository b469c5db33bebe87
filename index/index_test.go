package index

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/storage"
)

// TestUpdateFollowsHistory follows a random history of growth, rewrites,
// shrinks and regrowth, with compactions and snapshots arriving late, and
// checks every version page by page when it is made and again at the end
// (versions never change), and At for every TXID the files still rebuild;
// then retention removes the L0 files the compactions and the snapshot
// cover, and the pages move to those.
func TestUpdateFollowsHistory(t *testing.T) {
	r := newTestReplica(t)
	var moves []Move
	x := New(r.client, Options{Moved: func(m []Move) { moves = append(moves, m...) }})
	rng := rand.New(rand.NewPCG(1, 2))

	r.grow(40)
	var versions []*Version
	var seen []map[uint32]Entry
	var lastCompacted ltx.TXID = 1
	for step := 0; step < 80; step++ {
		commit := r.db.Commit()
		switch n := rng.IntN(10); {
		case n == 0 && commit > 5: // shrink
			r.apply(commit-uint32(rng.IntN(int(commit/2)))-1, 1)
		case n == 1: // grow, writing the new pages as SQLite does
			r.grow(commit + uint32(rng.IntN(40)) + 1)
		default: // rewrite a few pages
			pgnos := []uint32{1}
			for range rng.IntN(6) {
				pgnos = append(pgnos, uint32(rng.IntN(int(commit)))+1)
			}
			r.apply(commit, pgnos...)
		}
		if txid := r.db.TXID(); txid%9 == 0 {
			// A compaction of files the index has applied already.
			r.compact(1, lastCompacted+1, txid-3)
			lastCompacted = txid - 3
		}
		if step == 50 {
			r.snapshot() // L9 [1, TXID], at the TXID the index is about to reach
		}
		v := mustUpdate(t, x)
		if v.TXID() != r.db.TXID() {
			t.Fatalf("step %d: Update gave TXID %d, want %d", step, v.TXID(), r.db.TXID())
		}
		if x.Latest() != v {
			t.Fatalf("step %d: Latest is not the version Update returned", step)
		}
		r.check(v)
		versions = append(versions, v)
		seen = append(seen, lookups(v))
	}
	for i, v := range versions {
		if !sameLookups(v, seen[i]) {
			t.Fatalf("version at TXID %d changed after later updates", v.TXID())
		}
		r.check(v)
	}

	// The late files did not move pages that their L0 files still hold
	// (the page cache holds them under those files).
	for _, f := range x.Latest().Files() {
		if f.Info.Level != 0 {
			t.Errorf("latest version reads from %s while the L0 files it compacts are still there", f.Name())
		}
	}

	for txid := ltx.TXID(1); txid <= r.db.TXID(); txid++ {
		v, err := x.At(context.Background(), txid)
		if err != nil {
			if errors.Is(err, plan.ErrTXIDUnavailable) {
				continue // inside a compaction: only its MaxTXID is restorable
			}
			t.Fatalf("At(%d): %v", txid, err)
		}
		r.check(v)
	}

	// Retention: the pages move to the compactions and to the snapshot,
	// each move reported, and the version is exact.
	for txid := ltx.TXID(1); txid <= lastCompacted; txid++ {
		r.remove(0, txid, txid)
	}
	moves = nil
	before := x.Latest()
	v := mustUpdate(t, x)
	r.check(v)
	levels := map[int]bool{}
	for _, f := range v.Files() {
		levels[f.Info.Level] = true
		if f.Info.Level == 0 && f.Info.MaxTXID <= lastCompacted {
			t.Fatalf("latest version reads from %s, which retention removed", f.Name())
		}
	}
	if !levels[1] || !levels[storage.SnapshotLevel] {
		t.Errorf("latest version reads from levels %v; want the L1 compactions and the snapshot among them", levels)
	}
	if len(moves) == 0 {
		t.Fatal("no move reported")
	}
	for _, m := range moves {
		was, _ := before.Lookup(m.Pgno)
		now, _ := v.Lookup(m.Pgno)
		if m.From != was || m.To != now || m.From.File.Info.MaxTXID > lastCompacted {
			t.Fatalf("move of page %d from %s to %s; the page was in %s, is in %s", m.Pgno, m.From.File.Name(), m.To.File.Name(), was.File.Name(), now.File.Name())
		}
	}
}

// TestLateCompactionDoesNotRollBack: an L1 that ends before the L0 files
// already applied arrives; no page goes back to its older version, and no
// page moves while its L0 file is there; once retention removes them, the
// pages the L1 holds in their current version move to it.
func TestLateCompactionDoesNotRollBack(t *testing.T) {
	r := newTestReplica(t)
	var moves []Move
	x := New(r.client, Options{Moved: func(m []Move) { moves = append(moves, m...) }})
	r.grow(10)
	for range 9 {
		r.apply(10, 2, 3) // TXIDs 2..10
	}
	r.apply(10, 4) // 11: page 4 last written inside the compaction to come
	for range 5 {
		r.apply(10, 2) // 12..16: page 2 newer than the compaction
	}
	v16 := mustUpdate(t, x)
	r.check(v16)
	before := lookups(v16)

	r.compact(1, 2, 12) // L1 [2,12], after 13..16 were applied
	v := mustUpdate(t, x)
	if v == v16 {
		t.Fatal("the late L1 was not taken into the plan")
	}
	r.check(v)
	if !sameLookups(v16, before) {
		t.Fatal("the pinned version changed")
	}
	if !sameLookups(v, before) {
		t.Fatal("pages moved to the late L1 while their L0 files are there")
	}
	e2, _ := v.Lookup(2)
	if e2.File.Info.MaxTXID != 16 {
		t.Fatalf("page 2 comes from %s, want the L0 file of TXID 16", e2.File.Name())
	}

	// Nothing new: the same version, no new allocation for readers to pin.
	if again := mustUpdate(t, x); again != v {
		t.Fatal("an Update with no new file made a new version")
	}

	for txid := ltx.TXID(2); txid <= 12; txid++ {
		r.remove(0, txid, txid)
	}
	v = mustUpdate(t, x)
	r.check(v)
	if e2, _ := v.Lookup(2); e2.File.Info.MaxTXID != 16 {
		t.Fatalf("page 2 comes from %s, want the L0 file of TXID 16", e2.File.Name())
	}
	e4, _ := v.Lookup(4)
	if e4.File.Info.Level != 1 {
		t.Fatalf("page 4 comes from %s, want the L1 that holds the same version", e4.File.Name())
	}
	if len(moves) != 2 || moves[0].Pgno != 3 || moves[1].Pgno != 4 || moves[1].From != before[4] || moves[1].To != e4 {
		t.Fatalf("moves %v; want pages 3 and 4, from their L0 files to the L1", moves)
	}
}

// TestShrinkThenRegrow: pages cut off by a shrink never come back from a
// file older than the shrink, even when the database grows over them again
// without rewriting them; pages at or below the new size survive.
func TestShrinkThenRegrow(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(20)         // 1
	r.apply(20, 5, 15) // 2
	r.check(mustUpdate(t, x))
	steps := []func(){
		func() { r.apply(8, 1) },         // 3: shrink to 8 pages
		func() { r.apply(8, 2) },         // 4
		func() { r.apply(12, 1, 9, 11) }, // 5: regrow to 12, rewriting only 9 and 11
		func() { r.apply(20, 1, 13) },    // 6: regrow to 20, rewriting only 13
	}
	for _, step := range steps {
		step()
		r.check(mustUpdate(t, x)) // extends the version before
	}
	// A late compaction of TXID 2 holds page 15 as it was before the
	// shrink: it must not bring it back.
	r.compact(1, 2, 2)
	if v := mustUpdate(t, x); v.plan[1].Info.Level != 1 {
		t.Fatalf("the late L1 [2,2] is not in the plan: %v", v.plan)
	}
	r.check(x.Latest())
	v := x.Latest()
	for _, pgno := range []uint32{10, 12, 14, 15, 20} {
		if e, ok := v.Lookup(pgno); ok {
			t.Errorf("page %d, cut off at TXID 3 and never rewritten, is served from %s", pgno, e.File.Name())
		}
	}
	for _, pgno := range []uint32{3, 5, 8, 9, 13} {
		if _, ok := v.Lookup(pgno); !ok {
			t.Errorf("page %d is missing", pgno)
		}
	}
	// The same from a fresh plan, at every TXID.
	for txid := ltx.TXID(1); txid <= 6; txid++ {
		fresh, err := New(r.client, Options{}).At(context.Background(), txid)
		if err != nil {
			t.Fatal(err)
		}
		r.check(fresh)
	}
}

// TestGapAfterRetention: the index fell behind, a snapshot was taken and
// retention removed the L0 files it had not seen; Update builds a fresh
// plan, exact. A version pinned before the gap cannot be rebuilt, and says
// so.
func TestGapAfterRetention(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(10)
	for range 4 {
		r.apply(10, 2)
	}
	old := mustUpdate(t, x) // TXID 5
	for range 10 {
		r.apply(12, 3, 11, 12) // 6..15
	}
	r.snapshot() // L9 [1,15]
	for txid := ltx.TXID(1); txid <= 15; txid++ {
		r.remove(0, txid, txid)
	}
	r.apply(12, 4) // 16
	v := mustUpdate(t, x)
	if v.TXID() != 16 {
		t.Fatalf("TXID %d, want 16", v.TXID())
	}
	r.check(v)
	for _, f := range v.Files() {
		if f.Info.Level == 0 && f.Info.MaxTXID < 16 {
			t.Fatalf("version reads from %s, which retention removed", f.Name())
		}
	}

	e, _ := old.Lookup(2)
	if _, _, err := readPage(t, r.store, e); !isNotExist(err) {
		t.Fatalf("reading a page of the version pinned before retention: %v, want a missing file", err)
	}
	if _, err := x.Replan(context.Background(), old); !errors.Is(err, plan.ErrTXIDUnavailable) {
		t.Fatalf("Replan at TXID 5 after retention: %v, want plan.ErrTXIDUnavailable", err)
	}
}

// TestReplan: retention removes L0 files the latest version reads from
// after compacting them; Replan rebuilds the same TXID from what remains.
func TestReplan(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(10)
	for range 9 {
		r.apply(10, 2, 3)
	}
	v := mustUpdate(t, x) // TXID 10
	r.compact(1, 2, 10)
	for txid := ltx.TXID(2); txid <= 10; txid++ {
		r.remove(0, txid, txid)
	}
	e, _ := v.Lookup(2)
	if _, _, err := readPage(t, r.store, e); !isNotExist(err) {
		t.Fatalf("read after retention: %v, want a missing file", err)
	}
	nv, err := x.Replan(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	if nv.TXID() != v.TXID() {
		t.Fatalf("Replan gave TXID %d, want %d", nv.TXID(), v.TXID())
	}
	r.check(nv)
	if x.Latest() != nv {
		t.Fatal("Latest still reads from the vanished files")
	}
}

func TestAt(t *testing.T) {
	ctx := context.Background()
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(10)
	for range 19 {
		r.apply(10, 2, 5)
	}
	r.compact(1, 2, 10)
	r.remove(0, 1, 1) // keep the snapshot only as L9
	r.write(storage.SnapshotLevel, 1, 1, r.l0[1])

	for _, txid := range []ltx.TXID{1, 10, 11, 15, 20} {
		v, err := x.At(ctx, txid)
		if err != nil {
			t.Fatalf("At(%d): %v", txid, err)
		}
		r.check(v)
		if again, err := x.At(ctx, txid); err != nil || again != v {
			t.Fatalf("At(%d) again: %v; want the version still in use", txid, err)
		}
	}
	if _, err := x.At(ctx, 21); !errors.Is(err, plan.ErrTXIDNotFound) {
		t.Fatalf("At(21): %v, want plan.ErrTXIDNotFound", err)
	}
	r.remove(0, 2, 2) // TXIDs 2..9 are now only inside the L1
	if _, err := x.At(ctx, 5); !errors.Is(err, plan.ErrTXIDUnavailable) {
		t.Fatalf("At(5) inside a compaction: %v, want plan.ErrTXIDUnavailable", err)
	}
	if _, err := x.At(ctx, 0); !errors.Is(err, plan.ErrTXIDUnavailable) {
		t.Fatalf("At(0): %v, want plan.ErrTXIDUnavailable", err)
	}
}

func TestTXIDAt(t *testing.T) {
	ctx := context.Background()
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(4)
	for range 9 {
		r.apply(4, 2)
	}
	for txid := ltx.TXID(1); txid <= 10; txid++ {
		got, err := x.TXIDAt(ctx, r.timeOf(txid).Add(500*time.Millisecond))
		if err != nil || got != txid {
			t.Fatalf("TXIDAt(commit time of %d + 0.5s) = %d, %v", txid, got, err)
		}
	}
	if _, err := x.TXIDAt(ctx, r.timeOf(1).Add(-time.Second)); !errors.Is(err, plan.ErrTimeUnavailable) {
		t.Fatalf("TXIDAt before the first commit: %v, want plan.ErrTimeUnavailable", err)
	}
}

// TestRequestCounts: a cold build of a replica without a manifest costs
// one listing of its LTX files however many levels hold files, one of its
// hints, and one read per small file; a poll with nothing new costs the
// listings only; a new file costs one read. (Storage that lists level by
// level: see TestListingLevelByLevel.)
func TestRequestCounts(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(30)
	for range 10 {
		r.apply(30, 1, 7)
	}
	r.snapshot() // L9 1-11
	for range 14 {
		r.apply(30, 1, 7)
	}
	r.compact(1, 2, 20)
	r.compact(2, 2, 10)
	r.client.Reset()
	v := mustUpdate(t, x) // L9 1-11, L1 2-20, L0 21..25
	c := r.client.Counts()
	if n := int64(len(v.plan)); c.Lists != 1 || c.ObjectLists != 1 || c.Opens != n {
		t.Fatalf("cold build of %d files from 4 levels: %d LTX listings, %d object listings, %d reads; want 1, 1, %d", n, c.Lists, c.ObjectLists, c.Opens, n)
	}

	r.client.Reset()
	if mustUpdate(t, x) != v {
		t.Fatal("a poll with nothing new made a new version")
	}
	if c := r.client.Counts(); c.Lists != 1 || c.Opens != 0 {
		t.Fatalf("poll with nothing new: %d lists, %d reads; want 1, 0", c.Lists, c.Opens)
	}

	r.apply(30, 3)
	r.client.Reset()
	r.check(mustUpdate(t, x))
	if c := r.client.Counts(); c.Opens != 1 {
		t.Fatalf("poll with one new file: %d reads, want 1", c.Opens)
	}

	// At a TXID of the latest plan: every file is known.
	r.client.Reset()
	old, err := x.At(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	r.check(old)
	if c := r.client.Counts(); c.Opens != 0 {
		t.Fatalf("At(20) with every file known: %d reads, want 0", c.Opens)
	}
}

// TestLargeIndexNeedsOneMoreRead: a file whose page index is larger than
// the tail read gets one more read, and is exact.
func TestLargeIndexNeedsOneMoreRead(t *testing.T) {
	headAndTail(t)
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(12000) // ~12,000 index entries: more than the 64 KiB tail holds
	r.client.Reset()
	v := mustUpdate(t, x)
	if c := r.client.Counts(); c.Opens != 3 {
		t.Fatalf("%d reads, want 3 (header, tail, rest of the index)", c.Opens)
	}
	r.check(v)
}

// TestConcurrentReaders: readers look pages up in versions they pinned
// while Update builds new ones; run under -race.
func TestConcurrentReaders(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(600) // more than one chunk
	v0 := mustUpdate(t, x)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := x.Latest()
				want := lookups(v)
				for range 3 {
					if !sameLookups(v, want) {
						errs <- errors.New("a pinned version changed under a reader")
						return
					}
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 30 {
		r.apply(600, 1, uint32(rng.IntN(600))+1, uint32(rng.IntN(600))+1)
		mustUpdate(t, x)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r.check(v0)
	r.check(x.Latest())
}

// TestConcurrentUpdates: Update, At and Replan from many goroutines at
// once agree and stay exact.
func TestConcurrentUpdates(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{Concurrency: 4})
	r.grow(50)
	for range 10 {
		r.apply(50, 1, 9)
	}
	var wg sync.WaitGroup
	results := make(chan *Version, 12)
	for i := range 12 {
		wg.Go(func() {
			var v *Version
			var err error
			switch i % 3 {
			case 0:
				v, err = x.Update(context.Background())
			case 1:
				v, err = x.At(context.Background(), 6)
			default:
				v, err = x.At(context.Background(), 11)
			}
			if err != nil {
				t.Error(err)
				return
			}
			results <- v
		})
	}
	wg.Wait()
	close(results)
	for v := range results {
		r.check(v)
	}
}

func TestUpdateHonoursContext(t *testing.T) {
	r := newTestReplica(t)
	r.grow(3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(r.client, Options{}).Update(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context: %v", err)
	}
}

func TestUpdateEmptyReplica(t *testing.T) {
	r := newTestReplica(t)
	if _, err := New(r.client, Options{}).Update(context.Background()); !errors.Is(err, plan.ErrNoFiles) {
		t.Fatalf("Update of an empty replica: %v, want plan.ErrNoFiles", err)
	}
}

// TestReplicaStartedAgain: the replica is deleted and written again from
// TXID 1 by another database; the next Update must not extend the old
// version with the new files, whose TXIDs continue it only by number.
func TestReplicaStartedAgain(t *testing.T) {
	ctx := context.Background()
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(10)
	for range 4 {
		r.apply(10, 2)
	}
	mustUpdate(t, x) // TXID 5
	if err := r.store.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}

	r2 := newTestReplica(t)
	r2.dir, r2.store, r2.client = r.dir, r.store, r.client
	r2.epoch = r.epoch.Add(time.Hour)
	r2.grow(10)
	for range 4 {
		r2.apply(10, 3)
	}
	r2.check(mustUpdate(t, x)) // TXID 5 again, another database
	r2.apply(10, 4)            // 6
	r2.check(mustUpdate(t, x))
}

// TestConcurrencyBound: no more requests are in flight than
// Options.Concurrency, listing or reading.
func TestConcurrencyBound(t *testing.T) {
	r := newTestReplica(t)
	r.grow(40)
	for range 20 {
		r.apply(r.db.Commit(), 1)
	}
	r.client.Reset()
	r.check(mustUpdate(t, New(r.client, Options{Concurrency: 2})))
	if c := r.client.Counts(); c.PeakInFlight > 2 {
		t.Fatalf("%d requests in flight at once, want at most 2", c.PeakInFlight)
	}
}

// TestListingBehindKeepsLatest: a listing whose newest restorable TXID is
// behind the latest version (it raced with compaction and retention) keeps
// the latest version.
func TestListingBehindKeepsLatest(t *testing.T) {
	r := newTestReplica(t)
	x := New(r.client, Options{})
	r.grow(10)
	for range 9 {
		r.apply(10, 2)
	}
	v := mustUpdate(t, x)
	r.remove(0, 10, 10)
	if got := mustUpdate(t, x); got != v {
		t.Fatalf("Update gave TXID %d, want the latest version kept", got.TXID())
	}
	r.write(0, 10, 10, r.l0[10])
	r.apply(10, 3)
	r.check(mustUpdate(t, x))
}
