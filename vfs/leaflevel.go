package vfs

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// Reading a small index whole. A lookup by a secondary index that does not
// cover the query reads an index leaf, then the table leaf of the row: two
// requests one after the other when both are cold. An index is much
// smaller than its table (a key and a rowid per row), and every lookup
// through it needs one of its leaves: once lookups have missed as many of
// its leaves as reading all of them costs in requests, the VFS reads them
// all, in parallel ranged requests, and the lookups after wait for their
// table leaf only. That is renting until the rent paid equals the price,
// then buying: a connection never pays more than twice what the best
// choice, made knowing its future lookups, would have cost.
//
// Only index trees (a table's leaves are its rows: the database itself),
// only a leaf level of at most budget/levelShare bytes, and only where the
// interior pages above it are held (the hints, or the walk, brought them);
// the leaves are found from the highest interior page the connection read
// above the missed leaf (joinRun's climb). The leaves are kept as hot
// pages (and in the disk tier), as the interior pages are; see readHot for
// how the read ends.
const (
	// levelShare: a leaf level is read whole only if it is at most this
	// share of the cache budget (the probation segment keeps a quarter).
	levelShare = 8
	// levelPatience bounds the read of a leaf level: it normally lands in
	// a round trip and the transfer of its bytes.
	levelPatience = time.Second
)

type leafLevel struct {
	v      *index.Version
	misses map[uint32]int      // index leaves missed since the last read, by the top of their tree
	leaves map[uint32][]uint32 // the leaf level under a top, once found (nil: too large)
	reads  map[uint32]*hotRead // the last read of a leaf level, by top
}

// hotRead is a read of a leaf level in the background (readHot).
type hotRead struct {
	done atomic.Bool // it ended
	cut  atomic.Bool // it ended before it brought every leaf: its statement or query ended
}

// observe counts a leaf a query of the connection read (as keyRun's
// observe): a miss of an index leaf, and reads the leaf level of its tree
// once the misses there reach what reading it costs. A read cut short
// (its statement ended before all its requests were made) is made again at
// the next miss, the price paid already; one under way is waited for.
func (ll *leafLevel) observe(ctx context.Context, r *replica, v *index.Version, jr *joinRun, key pagecache.Key, data []byte, held bool) {
	if held || r.cold.tune.noReadahead || r.cold.tune.noLeafLevel {
		return
	}
	if at := btreeHeader(key.Pgno); len(data) <= at || data[at] != btreeLeafIndex {
		return
	}
	if ll.v != v {
		*ll = leafLevel{v: v, misses: map[uint32]int{}, leaves: map[uint32][]uint32{}, reads: map[uint32]*hotRead{}}
	}
	t, ok := jr.climb(r, v, key.Pgno)
	if !ok {
		return
	}
	leaves, found := ll.leaves[t.top]
	if !found {
		leaves, ok = leafLevelOf(r, v, t)
		if !ok {
			return // an interior page on the way is not held (yet)
		}
		ll.leaves[t.top] = leaves
	}
	if leaves == nil {
		return
	}
	last := ll.reads[t.top]
	if last != nil && !last.done.Load() {
		return // under way
	}
	refs := make([]pagecache.Ref, 0, len(leaves))
	for _, p := range leaves {
		if e, ok := v.Lookup(p); ok {
			refs = append(refs, pageRef(e, p, v.PageSize()))
		}
	}
	if last == nil || !last.cut.Load() {
		ll.misses[t.top]++
		price := r.cache.HotRequests(refs)
		if price < 0 || ll.misses[t.top] < price {
			return
		}
	}
	ll.misses[t.top] = 0
	ll.reads[t.top] = readHot(ctx, r, refs)
}

// readHot reads refs as hot pages (pagecache.PrefetchHot: kept in the
// protected segment and the disk tier, as the pages of the hints and the
// walk are) in the background. The read ends with the query's context,
// with the replica, or after levelPatience, not with the statement: a
// point lookup ends before the read of a whole index lands, and it lands
// for the next ones (as the walk's batches do). It counts against the
// statement that started it, within its budget, which holds for it
// (statement.hold); a later query never waits for it past pagecache's
// patience.
func readHot(ctx context.Context, r *replica, refs []pagecache.Ref) *hotRead {
	read := &hotRead{}
	st := statementOf(ctx)
	if st != nil && !st.hold() {
		st = nil // cannot be: ctx's statement is reading a page
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), levelPatience)
	stopQuery := context.AfterFunc(ctx, cancel)
	stopReplica := context.AfterFunc(r.cold.ctx, cancel)
	r.walk.wg.Add(1) // closeCold waits for it, with the walk
	go func() {
		defer r.walk.wg.Done()
		defer read.done.Store(true)
		if st != nil {
			defer st.release()
		}
		defer stopReplica()
		defer stopQuery()
		defer cancel()
		err := r.cache.PrefetchHot(rctx, refs)
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled) && r.cold.ctx.Err() == nil:
			read.cut.Store(true)
		default:
			r.log.Debug("ltx vfs: reading a small index whole failed; its leaves are read when a query needs them", "err", err)
		}
	}()
	return read
}

// leafLevelOf lists the leaves of tree t, going down from its top through
// the interior pages the cache holds: nil if they are more than
// budget/levelShare bytes; ok false if an interior page is not held.
func leafLevelOf(r *replica, v *index.Version, t joinTree) (leaves []uint32, ok bool) {
	most := int(r.cold.budget / levelShare / int64(v.PageSize()))
	level := []uint32{t.top}
	for range t.depth {
		var next []uint32
		for _, p := range level {
			data, ok := pageHeld(r, v, p)
			if !ok {
				return nil, false
			}
			kids := childrenInOrder(data, p, v.Commit())
			if kids == nil {
				return nil, false
			}
			next = append(next, kids...)
			if len(next) > most {
				return nil, true
			}
		}
		level = next
	}
	return slices.Compact(level), true
}
