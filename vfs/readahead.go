package vfs

import (
	"context"
	"iter"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// Reading ahead. SQLite asks for one page at a time, and a scan of a table
// (or of an index) in key order asks for its leaf pages mostly in
// ascending page order: a table filled in key order lies so in the file,
// broken now and then by a page of another B-tree. Behind object storage
// that is one round trip a page, a fraction of a megabyte a second. So each
// connection watches its reads; after a few in ascending order, it reads
// the pages that follow in the background, in parallel ranged reads
// (pagecache.PrefetchAsync), quadruples how far ahead it reads while the
// run goes on, up to a share of the cache budget, so that what is read
// ahead is never pushed out before SQLite asks for it, and tops that up
// each time SQLite has read an eighth of it, so that reads are in flight
// all the time (at 20 ms a request and 100 MB/s, a scan's speed is what
// is in flight per round trip). Those pages enter
// the cache on probation (see the pagecache's segments): a scan never
// pushes out the pages point lookups keep using. A read elsewhere that
// misses the cache ends the run.
//
// What is read ahead ends with the query that asked for it: with its
// context, or at the end of the connection's read transaction (the VFS sees
// it as Unlock(NONE): when its last open statement ends in autocommit
// mode, at COMMIT/ROLLBACK in an explicit transaction), whichever comes
// first. A query made with
// context.Background() has no context that ends, and storage that hangs
// would otherwise hold its reads ahead, and the pages they claim, forever.
const (
	raMinRun  = 2         // ascending reads in a row before reading ahead
	raMaxStep = 8         // a read at most this many pages after the last continues a run
	raFirst   = 256 << 10 // bytes read ahead at first
	raGrowth  = 4         // the window grows so each time it is topped up, while the run goes on
	// raRefill: the window is topped up once 1/raRefill of it was read, so
	// that 7/8 of it is in flight or landed at all times: at 20 ms a
	// request, a full window of 16 MiB (a 64 MiB cache) keeps a scan at
	// about 300 MB/s, where topping up at a quarter kept it near 230.
	raRefill = 8
	// raShare: what is read ahead and not read yet is at most
	// budget/raShare, the share of the budget the cache's probation
	// segment always keeps for itself (pagecache.probationShare), where
	// pages read ahead stay until read once, the newest there: so they are
	// not pushed out before SQLite asks for them
	// (TestReadaheadFitsTheCache).
	raShare = 4
)

// readahead is one connection's view of its reads.
type readahead struct {
	v     *index.Version // the version of the run
	last  uint32         // the last page of the run
	run   int            // ascending reads in a row
	from  uint32         // where the reads ahead of the run began
	w     aheadWindow    // by page number
	scope raScope        // what ends the reads ahead under way
}

// restart starts a new run at pgno of v.
func (ra *readahead) restart(v *index.Version, pgno uint32) {
	*ra = readahead{v: v, last: pgno, scope: ra.scope}
}

// endTransaction ends the reads ahead of the read transaction that ends.
// What they had not brought is no longer on its way: the run goes on, if
// the next transaction continues it, from its last page.
func (ra *readahead) endTransaction() {
	ra.scope.end()
	ra.w.ahead = min(ra.w.ahead, int(ra.last))
}

// raScope makes the contexts of a connection's reads ahead: each ends with
// the query's context or with the read transaction, whichever ends first.
type raScope struct {
	tx    context.Context // ends with the read transaction; nil before a read ahead
	endTx context.CancelFunc
	query context.Context // the query context that ctx was made for
	ctx   context.Context // ends with query or with tx
	stops []func() bool   // unhook the contexts made from the queries' contexts
}

// context returns the context for reads ahead asked for by a query whose
// context is query.
func (s *raScope) context(query context.Context) context.Context {
	if s.tx == nil {
		s.tx, s.endTx = context.WithCancel(context.Background())
	}
	if query.Done() == nil {
		return s.tx // context.Background(): only the transaction ends them
	}
	if s.query != query {
		// Another statement of the transaction: its reads ahead end with
		// its own context; those of the earlier ones with theirs.
		ctx, cancel := context.WithCancel(s.tx)
		s.stops = append(s.stops, context.AfterFunc(query, cancel))
		s.query, s.ctx = query, ctx
	}
	return s.ctx
}

// end cancels every read ahead the scope's contexts were given to.
func (s *raScope) end() {
	if s.tx == nil {
		return
	}
	s.endTx()
	for _, stop := range s.stops {
		stop()
	}
	*s = raScope{}
}

// observe notes a read of the page of v under key (key.Pgno) and reads
// ahead when it continues a run. What it reads ahead ends with ctx, the
// query's, or with the read transaction (endTransaction).
func (ra *readahead) observe(ctx context.Context, r *replica, v *index.Version, key pagecache.Key) {
	pgno := key.Pgno
	if r.cold.tune.noReadahead || pgno < 2 {
		return
	}
	if ra.v != v {
		ra.restart(v, pgno)
		return
	}
	switch {
	case pgno > ra.last && (pgno-ra.last <= raMaxStep || int(pgno) <= ra.w.ahead):
		// The next page, a few pages on (past pages of other B-trees), or
		// further on but within what is read ahead.
		ra.run++
		ra.last = pgno
	case pgno == ra.last:
		return
	case ra.w.size > 0 && pgno > ra.from && int(pgno) <= ra.w.ahead:
		// Behind the run's last page, within what it reads ahead: a scan
		// read a page of its B-tree that lies further on (an interior
		// page, held since the hints or the walk brought it), and goes on
		// with the leaf pages before it, which are held or on their way.
		// The run goes on; last stays where it is.
		ra.run++
	default:
		// Not the next page: an interior page the scan climbs back to (held,
		// since it was read on the way down) leaves the run alone; a read
		// that misses ends it. Without a run there is nothing to keep, and
		// random reads (point lookups) cost no cache lookup here.
		if ra.run == 0 {
			ra.last = pgno
			return
		}
		if r.cache.Contains(key) {
			return
		}
		ra.restart(v, pgno)
		return
	}
	if ra.run < raMinRun {
		return
	}
	if ra.w.size == 0 {
		ra.from = pgno
	}
	ps := v.PageSize()
	from, to, ok := ra.w.topUp(int(pgno), int(v.Commit()), max(int(raFirst/ps), 4), aheadMost(r, ps))
	if !ok {
		return // enough is on its way
	}
	readAheadPages(ctx, r, v, &ra.scope, func(yield func(uint32) bool) {
		for p := uint32(from); p <= uint32(to); p++ {
			if !yield(p) {
				return
			}
		}
	}, to-from+1)
}

// aheadWindow is how far a run of reads ahead reaches, in positions (page
// numbers, or a B-tree page's children in key order): those up to ahead
// are held or on their way, and the next top-up reads up to size past the
// run's position. The window starts at a first size, grows raGrowth-fold
// at each top-up up to a most, and is topped up once 1/raRefill of it was
// read, so that reads are in flight all the time.
type aheadWindow struct {
	ahead, size int
}

// topUp returns the positions to read ahead of pos, up to end, and counts
// them as on their way; ok is false while enough is on its way, or when
// nothing is left before end.
func (w *aheadWindow) topUp(pos, end, first, most int) (from, to int, ok bool) {
	if w.size == 0 {
		w.size = min(first, most)
	}
	w.ahead = max(w.ahead, pos)
	if w.ahead-pos > w.size-w.size/raRefill {
		return 0, 0, false
	}
	from, to = w.ahead+1, min(pos+w.size, end)
	if from > to {
		return 0, 0, false
	}
	w.ahead, w.size = to, min(w.size*raGrowth, most)
	return from, to, true
}

// aheadMost is the most pages a window reads ahead: budget/raShare.
func aheadMost(r *replica, pageSize uint32) int {
	return max(int(r.cold.budget/raShare/int64(pageSize)), 4)
}

// readAheadPages reads the n pages of v that pgnos yields in the
// background, for the query of ctx, ending with it or with scope's
// transaction. The reads count against the statement that asked for them,
// and are skipped rather than take it past its budget (budget.go).
func readAheadPages(ctx context.Context, r *replica, v *index.Version, scope *raScope, pgnos iter.Seq[uint32], n int) {
	ps := v.PageSize()
	refs := make([]pagecache.Ref, 0, n)
	for p := range pgnos {
		if e, ok := v.Lookup(p); ok {
			refs = append(refs, pageRef(e, p, ps))
		}
	}
	r.cache.PrefetchAsync(aheadContext(scope.context(ctx), ctx), refs)
}
