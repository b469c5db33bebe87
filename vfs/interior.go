package vfs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// Finding B-tree interior pages without hints. Our writer publishes each
// snapshot's interior pages (hints), and an open hands them to the cache:
// a point lookup then waits for one request, its leaf. A replica written by
// Litestream has no hints, and a lookup waits for each level of the tree
// it does not hold yet, one round trip each. So the VFS learns the trees
// itself, from the pages SQLite reads.
//
// A lookup walks down a tree: each page SQLite reads is a child of the one
// before. Each connection follows its walk (descent); when it reaches a
// leaf it knows the height of every page on the way (a B-tree is balanced:
// every leaf is at the same depth), and every page of a height of 2 or
// more has only interior children. Those children are then fetched in
// parallel in the background, and theirs while they are interior too, one
// level per round trip, until the tree's interior pages are all held: the
// lookups after that wait for their leaf only. An interior page SQLite
// reads below another says the same of its ancestors before any leaf is
// reached. What was fetched is kept as hot pages, and in the disk tier (a
// reader started again finds them there). A walk whose interior pages were
// all held (from our writer's hints, or fetched already) has nothing to
// teach and starts nothing: only a way down that missed an interior page
// does.
//
// Page numbers come from page contents and are looked up in the version
// of the query that found them, like any page it reads: a page fetched is
// the version's own, keyed by its file and page number, never another
// TXID's. A page that only looks interior costs a wasted read at most.
//
// Bounds: the pages fetched so are at most a share of the cache budget
// (hintShare, as the interior pages of hints); the reads count against the
// statement whose walk asked for them and start only while it is open, is
// not a scan (reading ahead: it climbs only the parents of its own leaves)
// and has used less than half its budget (max_requests=, max_bytes=), so
// that a small query never pays for a big prefetch; they end with the query's
// context, and each batch within walkPatience. A read that fails is
// logged and dropped: the page is read when a query needs it, and fails
// that query only if it must.
const (
	walkWorkers   = 4  // batches of one replica in flight
	walkBatch     = 16 // pages per batch (one PrefetchHot: its reads all at once)
	walkPatience  = time.Second
	walkMaxDepth  = 16      // deeper than any real B-tree: a longer path is not a walk
	walkFailLimit = 3       // failed batches logged per replica
	walkMaxQueue  = 1 << 16 // pages waiting to be fetched, at most
)

// descent is one connection's walk down a B-tree: the interior pages it
// read since its last leaf (the first may be any page of the tree: SQLite
// holds the top of the tree in its own cache), and whether one of them was
// not held. A walk whose interior pages were all held has nothing to teach
// (our writer's hints gave them, or the walk did): it is only noted, and
// checked once one of its interior pages turns out not to be held, so that
// a warm lookup pays a few comparisons per page and nothing else.
type descent struct {
	v      *index.Version
	hinted bool // a file of v's plan has a hint: its trees' interior pages came with the open
	path   []step
	missed bool // an interior page of path was not held when read
}

type step struct {
	key  pagecache.Key
	page []byte // the page as the cache holds it (never modified)
}

// note follows the walk with page pgno of v, just read (key, data; held
// tells whether the cache held it in memory), and asks for the children
// of the pages on the way whose height it learns to be 2 or more.
func (d *descent) note(ctx context.Context, r *replica, v *index.Version, key pagecache.Key, data []byte, held bool) {
	pgno := key.Pgno
	kind := kindOf(data, pgno)
	if kind == otherPage {
		return // an overflow page of a row: the walk goes on past it
	}
	if d.v != v {
		d.v, d.path, d.missed = v, d.path[:0], false
		d.hinted = slices.ContainsFunc(v.Plan(), (*index.File).Hinted)
	}
	if kind == interiorPage {
		if len(d.path) == walkMaxDepth {
			d.path, d.missed = d.path[:0], false
		}
		d.path = append(d.path, step{key: key, page: data})
		d.missed = d.missed || !held
	}
	// Without hints, a missed leaf teaches too: the first lookup of a
	// connection may find the top of the tree held (the open read the
	// first pages of the file), and is the only lookup whose way down
	// shows the root: SQLite keeps the root in its own cache after it, and
	// later ways down start below it, too low to tell the height of what
	// they read. With hints, the open brought the interior pages: a page
	// missing there changed since (the right edge of a tree, in small
	// files), and the walk would fetch that edge for nothing.
	if kind == leafPage && !held && !d.hinted {
		d.missed = true
	}
	if d.missed {
		d.learn(r, v)
		r.walk.resume(ctx, r)
	}
	if kind == leafPage {
		d.path, d.missed = d.path[:0], false
	}
}

// learn keeps of the path the pages each a child of the one before, up to
// the last, and asks for the children of those whose height that shows to
// be 2 or more: counted from the bottom of the path, an interior page is
// at least as high as its place (exactly, once a leaf is reached below).
func (d *descent) learn(r *replica, v *index.Version) {
	if len(d.path) == 0 {
		return // a leaf read with no interior page before it: nothing to learn
	}
	first := len(d.path) - 1
	for first > 0 && isChild(d.path[first-1].page, d.path[first-1].key.Pgno, d.path[first].key.Pgno) {
		first--
	}
	d.path = append(d.path[:0], d.path[first:]...)
	for i, st := range d.path {
		h := uint8(len(d.path) - i)
		if h < 2 || !r.walk.unasked(st.key, h) {
			continue
		}
		if kids := childrenOf(st.page, st.key.Pgno, v.Commit()); kids != nil {
			r.walk.expand(v, st.key, kids, h)
		}
	}
}

// resume starts workers for what is queued, if anything is: called before
// a statement waits for a page too, so that the walk goes on while it
// waits (a point lookup often waits for nothing but its leaf).
func (w *walker) resume(ctx context.Context, r *replica) {
	if w.queued.Load() > 0 {
		w.start(ctx, r)
	}
}

// walker is a replica's knowledge of its B-trees and the fetches under
// way: the interior pages whose children were asked for, and the pages to
// fetch next.
type walker struct {
	queued atomic.Int64 // len(queue), read without the lock

	mu       sync.Mutex
	asked    map[pagecache.Key]uint8 // interior pages, and the height their children were asked for at
	queue    []walkJob
	workers  int
	fetched  int64 // bytes of pages fetched
	max      int64 // bound of fetched (0: the walk is off)
	failures int
	wg       sync.WaitGroup
}

// walkJob is a page known to be interior, of a height of at least height.
type walkJob struct {
	v      *index.Version
	pgno   uint32
	height uint8
}

// unasked reports whether the children of interior page key were not
// asked for at height h yet (and the walk is on).
func (w *walker) unasked(key pagecache.Key, h uint8) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max > 0 && w.asked[key] < h
}

// expand queues the children of interior page key, of height h (at
// least 2), unless they were asked for at that height already.
func (w *walker) expand(v *index.Version, key pagecache.Key, kids []uint32, h uint8) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.max == 0 || w.asked[key] >= h {
		return
	}
	if w.asked == nil {
		w.asked = map[pagecache.Key]uint8{}
	}
	w.asked[key] = h
	for _, kid := range kids {
		if len(w.queue) == walkMaxQueue {
			break
		}
		w.queue = append(w.queue, walkJob{v: v, pgno: kid, height: h - 1})
	}
	w.queued.Store(int64(len(w.queue)))
}

// start starts workers for the queue under the query's context ctx, for
// its statement (none: nothing starts).
func (w *walker) start(ctx context.Context, r *replica) {
	st := statementOf(ctx)
	if st == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.workers < walkWorkers && len(w.queue) > w.workers*walkBatch && w.fetched < w.max {
		w.workers++
		w.wg.Add(1)
		go w.work(ctx, r, st)
	}
}

// work fetches batches of the queue for statement st while it is open and
// has budget to spare.
func (w *walker) work(ctx context.Context, r *replica, st *statement) {
	defer w.wg.Done()
	// The reads carry the query's values (its statement) and end with the
	// query or the replica, not with the query's statement: a batch under
	// way when a point lookup ends lands for the next one.
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	defer context.AfterFunc(r.cold.ctx, cancel)()
	for {
		batch := w.take(st)
		if batch == nil {
			return
		}
		bctx, done := context.WithTimeout(base, walkPatience)
		err := w.fetch(bctx, r, batch)
		done()
		if err != nil {
			// Cut short: the query ended, or its statement (whose later
			// reads statClient refuses as cancelled), or its budget.
			var over *BudgetError
			w.failed(r, batch, err, base.Err() != nil || errors.Is(err, context.Canceled) || errors.As(err, &over))
			if base.Err() != nil {
				w.quit()
				return
			}
		}
	}
}

// take pops the next batch, or returns nil (and counts the worker out)
// when the queue is empty, the bound is reached or st may not read more.
func (w *walker) take(st *statement) []walkJob {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fetched >= w.max {
		w.queue = nil // the bound is reached: nothing more is fetched
		w.queued.Store(0)
	}
	if len(w.queue) == 0 || !st.spare(walkBatch) {
		w.workers--
		return nil
	}
	n := min(len(w.queue), walkBatch)
	batch := slices.Clone(w.queue[:n])
	w.queue = slices.Delete(w.queue, 0, n)
	w.queued.Store(int64(len(w.queue)))
	return batch
}

func (w *walker) quit() {
	w.mu.Lock()
	w.workers--
	w.mu.Unlock()
}

// fetch brings the pages of a batch that are not held, then asks for the
// children of those whose own are interior.
func (w *walker) fetch(ctx context.Context, r *replica, batch []walkJob) error {
	refs := make([]pagecache.Ref, 0, len(batch))
	keys := make([]pagecache.Key, len(batch))
	for i, j := range batch {
		e, ok := j.v.Lookup(j.pgno)
		if !ok {
			continue
		}
		ref := pageRef(e, j.pgno, j.v.PageSize())
		keys[i] = ref.Key
		if !r.cache.Contains(ref.Key) {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		if err := r.cache.PrefetchHot(ctx, refs); err != nil {
			return err
		}
		w.mu.Lock()
		w.fetched += int64(len(refs)) * int64(batch[0].v.PageSize())
		w.mu.Unlock()
	}
	for i, j := range batch {
		if j.height < 2 || keys[i] == (pagecache.Key{}) {
			continue
		}
		page, ok := r.cache.Peek(keys[i])
		if !ok || kindOf(page, j.pgno) != interiorPage {
			continue
		}
		if kids := childrenOf(page, j.pgno, j.v.Commit()); kids != nil {
			w.expand(j.v, keys[i], kids, j.height)
		}
	}
	return nil
}

// failed handles a batch that failed: cut short (the query or its
// statement ended, its budget), it goes back to the queue for the next
// statement; else (storage failing or too slow, a damaged frame) it is
// dropped, and the pages are read when a query needs them.
func (w *walker) failed(r *replica, batch []walkJob, err error, cut bool) {
	if cut {
		w.mu.Lock()
		w.queue = append(batch, w.queue...)
		w.queued.Store(int64(len(w.queue)))
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	w.failures++
	log := w.failures <= walkFailLimit
	w.mu.Unlock()
	if log {
		r.log.Warn("ltx vfs: a prefetch of B-tree interior pages failed; they are read when a query needs them", "err", err)
	}
}
