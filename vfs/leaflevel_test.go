package vfs

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// TestSmallIndexReadWhole: cold lookups by a secondary index that does not
// cover the query cost two requests each (the index leaf, then the row's
// table leaf) until they have cost as many as reading the whole index:
// then it is read, and the lookups after cost one (the table leaf). An
// index larger than an eighth of the cache budget is never read whole.
// The same on a replica without hints, once the walk found the index's
// interior pages. The rows are the primary's.
func TestSmallIndexReadWhole(t *testing.T) {
	src := statsSource(t)
	const lookups = 120
	rng := rand.New(rand.NewPCG(11, 12))
	ids := make([]int, lookups)
	for i := range ids {
		ids[i] = rng.IntN(20000) + 1
	}
	want := make([]int64, lookups)
	for i, id := range ids {
		want[i] = one[int64](t, src.db, `SELECT id + length(v) FROM t WHERE k = ?`, coldKey(id))
	}
	cost := map[string]Stats{}
	for _, c := range []struct {
		name   string
		tune   coldTuning
		budget int64
		client storage.Client
	}{
		{"read whole", coldTuning{}, 0, src.client},
		{"off", coldTuning{noLeafLevel: true}, 0, src.client},
		{"larger than budget/8", coldTuning{}, 1 << 20, src.client},
		{"without hints", coldTuning{}, 0, litestreamShaped{src.client}},
	} {
		statsSeq++
		name := fmt.Sprintf("leaf-level-%d", statsSeq)
		attachTunedT(t, name, Options{Client: c.client, Poll: time.Hour, CacheBytes: c.budget}, c.tune)
		conn := conn(t, openDB(t, "file:"+name+"?vfs=ltx"))
		var sum Stats
		for i, id := range ids {
			if got := one[int64](t, conn, `SELECT id + length(v) FROM t WHERE k = ?`, coldKey(id)); got != want[i] {
				t.Fatalf("%s: lookup of %d: %d, the primary says %d", c.name, id, got, want[i])
			}
			if i >= lookups/2 { // the second half: after the index was read
				s := statsOf(t, conn)
				sum.Requests += s.Requests
				sum.RoundTrips += s.RoundTrips
			}
		}
		cost[c.name] = sum
		t.Logf("%s: the last %d lookups cost %d requests, %d round trips", c.name, lookups/2, sum.Requests, sum.RoundTrips)
	}
	half := int64(lookups / 2)
	if off := cost["off"]; off.Requests < half*3/2 {
		t.Fatalf("without reading the index whole: %v for %d lookups, want nearly 2 each (the test tests nothing)", off, half)
	}
	for _, name := range []string{"read whole", "without hints"} {
		if got := cost[name]; got.Requests > half*11/10 {
			t.Fatalf("%s: %v for %d lookups, want about 1 each", name, got, half)
		}
	}
	if got, off := cost["larger than budget/8"], cost["off"]; got.Requests < off.Requests*9/10 {
		t.Fatalf("an index larger than budget/8: %v for %d lookups, want what it costs unread (%v)", got, half, off)
	}
}
