package index

import (
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// levelByLevel is storage that lists one level per request: it hides the
// backend's storage.AllLister, as a client of another module might lack
// it.
type levelByLevel struct{ storage.Client }

// TestListingLevelByLevel: storage that cannot list every level in one
// request is listed with one request per level, all in one round, no more
// at once than Options.Concurrency, and builds the same version as one
// listing does.
func TestListingLevelByLevel(t *testing.T) {
	r := newTestReplica(t)
	r.grow(30)
	for range 10 {
		r.apply(30, 1, 7)
	}
	r.snapshot()
	for range 5 {
		r.apply(30, 2, 9)
	}
	r.compact(1, 12, 14)

	one := mustUpdate(t, New(r.client, Options{}))
	r.check(one)

	for _, concurrency := range []int{0, 2} {
		// Each request takes a few milliseconds, so that those let go
		// at once are in flight at once.
		slow := wrap.NewFaulty(r.store, wrap.FaultyConfig{List: wrap.Behaviour{FirstByte: 3 * time.Millisecond}, ObjectList: wrap.Behaviour{FirstByte: 3 * time.Millisecond}})
		counting := wrap.NewCounting(levelByLevel{slow})
		if storage.CanListAll(counting) {
			t.Fatal("CanListAll over a client that lists level by level")
		}
		v := mustUpdate(t, New(counting, Options{Concurrency: concurrency}))
		r.check(v)
		if v.TXID() != one.TXID() || len(v.plan) != len(one.plan) {
			t.Fatalf("listed level by level: TXID %s from %d files; one listing: TXID %s from %d", v.TXID(), len(v.plan), one.TXID(), len(one.plan))
		}
		c := counting.Counts()
		if c.Lists != storage.SnapshotLevel+1 {
			t.Fatalf("concurrency %d: %d LTX listings, want one per level (%d)", concurrency, c.Lists, storage.SnapshotLevel+1)
		}
		if concurrency > 0 && c.PeakInFlight > int64(concurrency) {
			t.Fatalf("%d requests in flight at once, want at most %d", c.PeakInFlight, concurrency)
		}
		if concurrency == 0 && c.PeakInFlight < storage.SnapshotLevel+1 {
			t.Fatalf("%d requests in flight at most, want the %d listings at once", c.PeakInFlight, storage.SnapshotLevel+1)
		}
	}
}
