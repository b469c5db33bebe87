package vfs

import (
	"context"
	"math/bits"
	"slices"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// Reading ahead for a join. A join by a key looks up, for each row of the
// outer table, the inner table's row of that key: SQLite reads the outer
// table's leaves in order and, between them, one inner leaf per outer row,
// in no page order and no key order when the outer rows' keys are in no
// order (orders joined to customers by customer_id). Behind object storage
// that is one round trip per outer row. Yet the keys are written down: on
// the outer leaf SQLite is reading.
//
// So each connection keeps the leaves it read lately that no lookup
// explains (the outer leaves, as far as it can tell), and the numbers of
// the interior pages it read (the trees' upper levels, which the cache
// holds). When it misses a leaf, it looks for the integer columns of those
// leaves' rows whose values fall in the missed leaf's key range (its
// rowids, or the first column of an index); when two misses in a row are
// explained by the same column of one leaf, at rows in order, it is a
// join: the VFS goes down the inner tree from the highest interior page it
// knows above the missed leaf, for each of the rows that follow, with
// their values of that column, and reads the leaves they lead to ahead,
// in parallel, a window that starts at a few rows and grows fourfold while
// SQLite's reads follow it (the readahead's aheadWindow). The rows it
// lists run on into the outer leaves after the one SQLite reads, its
// siblings under the interior page above it, as far as the cache holds
// them (the outer table is read ahead in page order), so that the window
// crosses outer leaves; elsewhere, the first miss whose leaf a row's key
// leads to moves the run to that row.
//
// A join by an index reads, after each index leaf, the table row its
// entry points to: once two such table leaves were missed, each holding
// the rowid of the index entry just looked up, the entries of the index
// leaves read ahead (once they landed) lead down the table too, and those
// leaves are read ahead as well, a few rows behind the index's window.
//
// Only integer keys are read (rowids, an index whose first column holds
// integers). What is read ahead so is bounded as the readahead's (a share
// of the cache budget, the statement's budget) and ends with it (raScope);
// what a page says decides what is fetched, never what is served
// (record.go). The run ends with the read transaction.
const (
	// joinOuters: leaves read lately kept as candidates for the outer
	// table: a lookup by an index reads an index leaf and a table leaf,
	// so the outer leaf must outlast a few of those.
	joinOuters = 8
	// joinFirst: outer rows whose inner leaves are read ahead at first.
	joinFirst = 4
	// joinGap: a run goes on over at most this many outer rows whose
	// inner leaves SQLite did not ask the VFS for (held in its own cache,
	// or rows a WHERE clause skipped).
	joinGap = 16
	// joinMaxInteriors bounds the interior pages a connection remembers.
	joinMaxInteriors = 4096
	// joinMaxGuesses bounds what one miss may be a lookup of, and
	// joinMaxRows the rows read to find it: a miss that is no join's
	// lookup costs at most that (tens of microseconds, BenchmarkJoinGuess).
	joinMaxGuesses = 32
	joinMaxRows    = 512
	// joinMaxRowids bounds the table rows read ahead for one index key.
	joinMaxRowids = 8
	// joinRuns bounds the joins a connection follows at once: one per
	// inner table (or index) of a statement, the last ones recognised.
	joinRuns = 4
	// joinSeen: table leaves explained by the index entry just looked up
	// before the table is read ahead too.
	joinSeen = 2
)

type joinRun struct {
	v         *index.Version
	interiors map[uint32]struct{} // pages of v read as interior pages
	outers    [joinOuters]treePage
	next      int            // where in outers the next leaf goes
	guesses   [2][]joinGuess // what the last two misses may have been lookups of, the last first
	spare     []joinGuess    // a buffer for the next guesses
	runs      []*joinActive  // the joins under way, once recognised, at most joinRuns
}

// joinGuess is a row of a leaf read lately whose column col holds a key
// of a missed leaf.
type joinGuess struct {
	outer uint32
	col   int
	row   int
}

// joinTree is a B-tree as far as the VFS knows it: its highest interior
// page known, and the levels from there down to the leaves.
type joinTree struct {
	top   uint32
	depth int
}

// joinActive is a join recognised: the column of the outer rows that
// holds the inner key, the inner tree, and the outer rows listed so far:
// those of the outer leaf SQLite reads and of the leaves after it (its
// siblings, in key order) that the cache holds, read ahead in page order.
type joinActive struct {
	col     int
	inner   joinTree
	usable  int
	kind    byte     // the outer leaves' page type
	parent  uint32   // the interior page above the outer leaves (0: not known)
	kids    []uint32 // its children in key order
	leaves  []uint32 // the outer leaves listed, in key order
	starts  []int    // where each one's rows begin in keys and targets
	keys    []int64  // each row's key, its value of col
	targets []uint32 // the inner leaf each row's key leads to (0: not known)
	pos     int      // the row SQLite looked up last
	w       aheadWindow

	// An index join's table rows: the table, once recognised (depth > 0),
	// the table leaves of each row (0: its index leaf not held yet), and
	// how many table leaves the index entry just looked up explained.
	table  joinTree
	tables [][]uint32
	seen   int
}

// endTransaction ends the run with the read transaction. The interior
// pages stay known while the version is the same: SQLite keeps them in
// its own cache and may not read them again.
func (jr *joinRun) endTransaction() {
	jr.outers, jr.next, jr.runs = [joinOuters]treePage{}, 0, jr.runs[:0]
	jr.guesses[0], jr.guesses[1] = jr.guesses[0][:0], jr.guesses[1][:0]
}

// observe follows a page that a query of the connection read, as keyRun's
// observe does; usable is the pages' usable size, busy whether a readahead
// in page or key order is under way (a scan: no join to look for).
func (jr *joinRun) observe(ctx context.Context, r *replica, v *index.Version, key pagecache.Key, data []byte, held, busy bool, usable int, scope *raScope) {
	if r.cold.tune.noReadahead {
		return
	}
	if jr.v != v {
		*jr = joinRun{v: v}
	}
	pgno := key.Pgno
	switch kindOf(data, pgno) {
	case interiorPage: // known for leaflevel.go too
		if jr.interiors == nil || len(jr.interiors) >= joinMaxInteriors {
			jr.interiors = make(map[uint32]struct{})
		}
		jr.interiors[pgno] = struct{}{}
		return
	case leafPage:
	default:
		return
	}
	if r.cold.tune.noJoin {
		return
	}
	page := treePage{data: data, pgno: pgno, usable: usable}
	for _, run := range jr.runs {
		if j := run.follows(pgno); j >= 0 {
			run.pos = j
			run.readAhead(ctx, r, v, scope)
			return
		}
	}
	if slices.ContainsFunc(jr.runs, func(run *joinActive) bool { return run.isTableLeaf(pgno) }) {
		return
	}
	for _, run := range jr.runs {
		if run.adopt(r, v, page) {
			run.readAhead(ctx, r, v, scope)
			jr.keep(page)
			return
		}
	}
	// A scan read ahead (busy) needs no join looked for; once a join is
	// under way, its outer table may be read ahead in page order.
	if held || (busy && len(jr.runs) == 0) {
		jr.keep(page)
		return
	}
	lo, hi, ok := page.keyRange()
	if !ok {
		jr.keep(page)
		return
	}
	for _, run := range jr.runs {
		if o, row, ok := jr.explain(r, v, run, pgno, lo, hi); ok {
			run.moveTo(jr, r, v, o, row)
			run.readAhead(ctx, r, v, scope)
			return
		}
	}
	for _, run := range jr.runs {
		if jr.explainTable(r, v, run, page, lo, hi) {
			run.readAhead(ctx, r, v, scope)
			return
		}
	}
	// Two misses before this one: a join by an index misses a table
	// leaf between two index leaves.
	guesses := jr.guess(lo, hi)
	for _, g := range guesses {
		for _, p := range slices.Concat(jr.guesses[0], jr.guesses[1]) {
			if g.outer == p.outer && g.col == p.col && p.row < g.row && g.row <= p.row+joinGap {
				if run := jr.recognise(r, v, pgno, g); run != nil {
					run.readAhead(ctx, r, v, scope)
					return
				}
			}
		}
	}
	jr.guesses[0], jr.guesses[1], jr.spare = guesses, jr.guesses[0], jr.guesses[1]
	jr.keep(page)
}

// keep notes leaf page as a candidate for the outer table.
func (jr *joinRun) keep(page treePage) {
	if last := jr.outers[(jr.next+joinOuters-1)%joinOuters]; last.pgno == page.pgno {
		return
	}
	jr.outers[jr.next] = page
	jr.next = (jr.next + 1) % joinOuters
}

// guess lists the rows of the leaves kept whose integer columns hold a key
// in [lo, hi], the newest leaf first, reading at most joinMaxRows rows.
func (jr *joinRun) guess(lo, hi int64) []joinGuess {
	gs := jr.spare[:0]
	rows := 0
	for k := 1; k <= joinOuters && rows < joinMaxRows; k++ {
		o := jr.outers[(jr.next+joinOuters-k)%joinOuters]
		n := min(o.cells(), joinMaxRows-rows)
		rows += max(n, 0)
		for i := 0; i < n && len(gs) < joinMaxGuesses; i++ {
			_, cols, ok := o.leafRow(i)
			if !ok {
				continue
			}
			for m := cols.ok; m != 0; m &= m - 1 {
				if c := bits.TrailingZeros32(m); lo <= cols.vals[c] && cols.vals[c] <= hi {
					gs = append(gs, joinGuess{outer: o.pgno, col: c, row: i})
				}
			}
		}
	}
	return gs
}

// explain finds a kept leaf and a row of it whose column of the run holds
// a key in [lo, hi], the key range of missed leaf pgno, that leads down
// the inner tree to that leaf (a key that happens to lie in the range of
// the next outer leaf, itself a miss, does not): the first, newest leaf
// first, past the run's position on the run's own outer leaf.
func (jr *joinRun) explain(r *replica, v *index.Version, run *joinActive, pgno uint32, lo, hi int64) (treePage, int, bool) {
	for k := 1; k <= joinOuters; k++ {
		o := jr.outers[(jr.next+joinOuters-k)%joinOuters]
		n := o.cells()
		from := 0
		if at := slices.Index(run.leaves, o.pgno); at >= 0 {
			from = max(run.pos+1-run.starts[at], 0)
		}
		for i := from; i < n; i++ {
			_, cols, ok := o.leafRow(i)
			if !ok || cols.ok&(1<<run.col) == 0 {
				continue
			}
			if key := cols.vals[run.col]; lo <= key && key <= hi && leafFor(r, v, run.inner, o.usable, key) == pgno {
				return o, i, true
			}
		}
	}
	return treePage{}, 0, false
}

// explainTable tells whether missed table leaf page holds the row that the
// index entry of the run's row points to, and recognises the table once
// joinSeen did: its leaves are then read ahead too.
func (jr *joinRun) explainTable(r *replica, v *index.Version, run *joinActive, page treePage, lo, hi int64) bool {
	if page.kind() != btreeLeafTable || run.pos >= len(run.targets) {
		return false
	}
	ids := run.rowids(r, v, run.pos, nil)
	if !slices.ContainsFunc(ids, func(id int64) bool { return lo <= id && id <= hi }) {
		return false
	}
	if run.table.depth > 0 {
		return true
	}
	if run.seen++; run.seen < joinSeen {
		return true
	}
	t, ok := jr.climb(r, v, page.pgno)
	if !ok {
		return true
	}
	run.table, run.tables = t, make([][]uint32, len(run.targets))
	return true
}

// recognise starts a run for guess g, confirmed by the miss of leaf pgno,
// or moves the run of the same column and tree there: a join of three
// tables has two, the oldest goes past joinRuns.
func (jr *joinRun) recognise(r *replica, v *index.Version, pgno uint32, g joinGuess) *joinActive {
	t, ok := jr.climb(r, v, pgno)
	if !ok {
		return nil
	}
	at := slices.IndexFunc(jr.outers[:], func(o treePage) bool { return o.pgno == g.outer })
	if at < 0 {
		return nil
	}
	i := slices.IndexFunc(jr.runs, func(run *joinActive) bool { return run.col == g.col && run.inner == t })
	if i < 0 {
		if len(jr.runs) == joinRuns {
			jr.runs = slices.Delete(jr.runs, 0, 1)
		}
		jr.runs = append(jr.runs, &joinActive{col: g.col, inner: t})
		i = len(jr.runs) - 1
	}
	run := jr.runs[i]
	run.moveTo(jr, r, v, jr.outers[at], g.row)
	return run
}

// climb finds the tree of leaf pgno: from the leaf up to the highest
// interior page known above it.
func (jr *joinRun) climb(r *replica, v *index.Version, pgno uint32) (joinTree, bool) {
	t := joinTree{top: pgno}
	for t.depth < walkMaxDepth {
		parent, ok := jr.parentOf(r, v, t.top)
		if !ok {
			break
		}
		t.top, t.depth = parent, t.depth+1
	}
	return t, t.depth > 0 // no interior page above it known: nothing to go down from
}

// parentOf is the interior page known whose child is pgno.
func (jr *joinRun) parentOf(r *replica, v *index.Version, pgno uint32) (uint32, bool) {
	for p := range jr.interiors {
		if data, ok := pageHeld(r, v, p); ok && isChild(data, p, pgno) {
			return p, true
		}
	}
	return 0, false
}

// moveTo moves the run to row of outer leaf o: where the rows listed
// have it, or else the rows listed start again with o's.
func (run *joinActive) moveTo(jr *joinRun, r *replica, v *index.Version, o treePage, row int) {
	if at := slices.Index(run.leaves, o.pgno); at >= 0 {
		run.pos = run.starts[at] + row
		return
	}
	run.leaves, run.starts, run.keys, run.targets = run.leaves[:0], run.starts[:0], run.keys[:0], run.targets[:0]
	if run.table.depth > 0 {
		run.tables = run.tables[:0]
	}
	run.usable, run.kind, run.kids = o.usable, o.kind(), nil
	if parent, ok := jr.parentOf(r, v, o.pgno); ok {
		if data, ok := pageHeld(r, v, parent); ok {
			run.parent, run.kids = parent, childrenInOrder(data, parent, v.Commit())
		}
	}
	run.add(r, v, o)
	run.pos, run.w = row, aheadWindow{ahead: row}
}

// add lists the rows of outer leaf o after those listed, and forgets the
// leaves that SQLite is done with.
func (run *joinActive) add(r *replica, v *index.Version, o treePage) {
	for len(run.starts) > 1 && run.starts[1] < run.pos-joinGap {
		n := run.starts[1]
		run.leaves, run.starts = run.leaves[1:], run.starts[1:]
		for i := range run.starts {
			run.starts[i] -= n
		}
		run.keys, run.targets = run.keys[n:], run.targets[n:]
		if run.table.depth > 0 {
			run.tables = run.tables[n:]
		}
		run.pos, run.w.ahead = run.pos-n, run.w.ahead-n
	}
	run.leaves, run.starts = append(run.leaves, o.pgno), append(run.starts, len(run.keys))
	for i := range max(o.cells(), 0) {
		var key int64
		var leaf uint32
		if _, cols, ok := o.leafRow(i); ok && cols.ok&(1<<run.col) != 0 {
			key = cols.vals[run.col]
			leaf = leafFor(r, v, run.inner, run.usable, key)
		}
		run.keys, run.targets = append(run.keys, key), append(run.targets, leaf)
		if run.table.depth > 0 {
			run.tables = append(run.tables, nil)
		}
	}
}

// nextLeaf is the outer leaf after the last listed, if the cache holds it:
// its next sibling under the interior page above.
func (run *joinActive) nextLeaf(r *replica, v *index.Version) (treePage, bool) {
	if len(run.leaves) == 0 {
		return treePage{}, false
	}
	at := slices.Index(run.kids, run.leaves[len(run.leaves)-1])
	if at < 0 || at+1 >= len(run.kids) {
		return treePage{}, false
	}
	next := run.kids[at+1]
	data, ok := pageHeld(r, v, next)
	if !ok {
		return treePage{}, false
	}
	p := treePage{data: data, pgno: next, usable: run.usable}
	return p, p.kind() == run.kind
}

// adopt tells whether leaf page is an outer leaf of the run: listed
// already, or the next one, listed now.
func (run *joinActive) adopt(r *replica, v *index.Version, page treePage) bool {
	if slices.Contains(run.leaves, page.pgno) {
		return true
	}
	if len(run.leaves) == 0 {
		return false
	}
	at := slices.Index(run.kids, run.leaves[len(run.leaves)-1])
	if at < 0 || at+1 >= len(run.kids) || run.kids[at+1] != page.pgno || page.kind() != run.kind {
		return false
	}
	run.add(r, v, page)
	return true
}

// leafFor goes down tree t for key: the leaf it leads to, or 0 if a page
// on the way is not held.
func leafFor(r *replica, v *index.Version, t joinTree, usable int, key int64) uint32 {
	pgno := t.top
	for range t.depth {
		data, ok := pageHeld(r, v, pgno)
		if !ok {
			return 0
		}
		child, ok := treePage{data: data, pgno: pgno, usable: usable}.childFor(key)
		if !ok || child < 2 || child > v.Commit() {
			return 0
		}
		pgno = child
	}
	return pgno
}

// follows tells which row of the run SQLite looked up by reading leaf
// pgno: one of the next joinGap rows whose inner leaf it is, or -1.
func (run *joinActive) follows(pgno uint32) int {
	for j := run.pos + 1; j < len(run.targets) && j <= run.pos+joinGap; j++ {
		if run.targets[j] == pgno {
			return j
		}
	}
	return -1
}

// isTableLeaf tells whether pgno is a table leaf read ahead for the run's
// row.
func (run *joinActive) isTableLeaf(pgno uint32) bool {
	return run.pos < len(run.tables) && slices.Contains(run.tables[run.pos], pgno)
}

// rowids appends the rowids the index entries of row j point to, once the
// index leaf it leads to is held.
func (run *joinActive) rowids(r *replica, v *index.Version, j int, into []int64) []int64 {
	leaf := run.targets[j]
	if leaf == 0 {
		return into
	}
	data, ok := pageHeld(r, v, leaf)
	if !ok {
		return into
	}
	return treePage{data: data, pgno: leaf, usable: run.usable}.rowidsOf(run.keys[j], into)
}

// readAhead tops up the window of inner leaves read ahead of the run, and
// reads ahead the table leaves of the rows whose index leaves landed.
func (run *joinActive) readAhead(ctx context.Context, r *replica, v *index.Version, scope *raScope) {
	for len(run.targets) <= run.pos+max(run.w.size, joinFirst) {
		next, ok := run.nextLeaf(r, v)
		if !ok {
			break
		}
		run.add(r, v, next)
	}
	var pages []uint32
	if from, to, ok := run.w.topUp(run.pos, len(run.targets)-1, joinFirst, aheadMost(r, v.PageSize())); ok {
		for _, p := range run.targets[from : to+1] {
			if p != 0 && !slices.Contains(pages, p) {
				pages = append(pages, p)
			}
		}
	}
	if run.table.depth > 0 {
		var ids []int64
		for j := run.pos; j <= min(run.w.ahead, len(run.targets)-1); j++ {
			if run.tables[j] != nil {
				continue
			}
			ids = run.rowids(r, v, j, ids[:0])
			if len(ids) == 0 {
				continue
			}
			leaves := make([]uint32, 0, len(ids))
			for _, id := range ids {
				if p := leafFor(r, v, run.table, run.usable, id); p != 0 {
					leaves = append(leaves, p)
				}
			}
			run.tables[j] = leaves
			pages = append(pages, leaves...)
		}
	}
	if len(pages) > 0 {
		readAheadPages(ctx, r, v, scope, slices.Values(pages), len(pages))
	}
}

// pageHeld is page pgno of v if the cache holds it in memory.
func pageHeld(r *replica, v *index.Version, pgno uint32) ([]byte, bool) {
	e, ok := v.Lookup(pgno)
	if !ok {
		return nil, false
	}
	return r.cache.Peek(pageRef(e, pgno, v.PageSize()).Key)
}
