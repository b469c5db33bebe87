package vfs

import (
	"context"
	"slices"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
)

// Reading ahead in key order. The readahead of readahead.go follows page
// numbers: it serves a table filled in key order, whose leaves lie in the
// file in that order. An index filled in random key order (an index on a
// hash, a UUID, a name) has its leaves all over the file, and a range of
// it read in key order asks for leaves of no visible order: one round trip
// each. Yet the order is written down: an interior page lists its
// children in key order, and a scan reads them one after the other.
//
// So each connection remembers the interior page it read last; when a leaf
// it reads next is a child of that page, it notes where among the
// children; when the leaves after that are the next children in key
// order, it is a scan (a point lookup reads one leaf), and the children
// that follow are read ahead in parallel, a window that starts at a few
// leaves and grows fourfold while the run goes on, topped up as the scan
// reads them, as readahead.go does. Pages
// of other trees read meanwhile (the table rows of an index scan, a join's
// inner table) leave the run alone. When the scan goes past its page's
// last child, SQLite reads the next interior page (a read the VFS sees
// unless SQLite's own cache holds it), and the run goes on there with its
// window.
//
// What is read ahead so is bounded as the readahead's (a share of the
// cache budget, the statement's budget) and ends with it (raScope): a
// query, its transaction. What an interior page says decides what is
// fetched, never what is served (btree.go).
const (
	// keyMinRun: leaves read in key order in a row before reading ahead.
	// Leaves apart in the file cost a request each, and a guess past the
	// end of a range is a request for nothing: a range of up to 7 leaves
	// (a thousand keys or so) reads nothing ahead; a longer one waits for
	// 7 round trips before its reads go in parallel.
	keyMinRun = 8
	// keyFirst: leaves read ahead at first. Each is a request of its own
	// (they lie apart in the file), so the window starts small and grows
	// by raGrowth while the run goes on: a range of a few leaves more
	// than keyMinRun pays a few requests for nothing, not dozens.
	keyFirst = 4
)

type keyRun struct {
	v      *index.Version
	last   step       // the interior page read last
	recent [4]keyLeaf // the leaves read last, newest first
	kids   []uint32   // the run's page's children, in key order
	parent pagecache.Key
	pos    int         // the leaf read last is kids[pos]
	w      aheadWindow // by place in kids
	run    int         // leaves read in key order in a row (0: no run)
}

// endTransaction ends the run with the read transaction: a run is a
// statement's scan, and the next statement that reads the same leaves
// (the same range again) starts its own.
func (kr *keyRun) endTransaction() { *kr = keyRun{} }

// keyLeaf is a leaf read, and the interior page read last before it.
type keyLeaf struct {
	pgno   uint32
	parent step
}

// observe follows a page that a query of the connection read: pgno of v
// under key, whose bytes are data; held tells whether the cache held it,
// pageOrder whether the connection reads ahead in page order already (a
// tree whose key order is its page order: that readahead serves it, with
// fewer, larger reads). Reads ahead go under scope.
//
// Only a leaf that was not held may start a run: a scan whose leaves are
// held needs no read ahead, and a warm lookup pays a few comparisons, never
// the parsing of an interior page.
func (kr *keyRun) observe(ctx context.Context, r *replica, v *index.Version, key pagecache.Key, data []byte, held, pageOrder bool, scope *raScope) {
	if r.cold.tune.noReadahead || r.cold.tune.noKeyOrder {
		return
	}
	if kr.v != v {
		*kr = keyRun{v: v}
	}
	pgno := key.Pgno
	switch kindOf(data, pgno) {
	case interiorPage:
		kr.last = step{key: key, page: data}
		return
	case leafPage:
	default:
		return
	}
	switch {
	case kr.run > 0 && kr.pos+1 < len(kr.kids) && kr.kids[kr.pos+1] == pgno:
		kr.pos++
		kr.run++
	case !held:
		kr.start(v, pgno)
	}
	copy(kr.recent[1:], kr.recent[:])
	kr.recent[0] = keyLeaf{pgno: pgno, parent: kr.last}
	if kr.run >= keyMinRun && !pageOrder {
		kr.readAhead(ctx, r, v, scope)
	}
}

// start looks for a run that leaf pgno, not held, continues: the scan of
// a run that went past its page's last child goes on with the first child
// of the interior page read since, its window too; else a recent leaf of
// the same interior page whose next child in key order is pgno starts one.
// A leaf of another tree (an index scan's table row) leaves the run as it
// is.
func (kr *keyRun) start(v *index.Version, pgno uint32) {
	commit := v.Commit()
	if kr.run >= keyMinRun && kr.pos == len(kr.kids)-1 && kr.last.page != nil && kr.last.key != kr.parent {
		if kids := childrenInOrder(kr.last.page, kr.last.key.Pgno, commit); len(kids) > 0 && kids[0] == pgno {
			kr.parent, kr.kids, kr.pos, kr.w.ahead = kr.last.key, kids, 0, 0
			kr.run++
			return
		}
	}
	for _, l := range kr.recent {
		if l.pgno == 0 || l.parent.page == nil {
			continue
		}
		kids := childrenInOrder(l.parent.page, l.parent.key.Pgno, commit)
		if at := slices.Index(kids, l.pgno); at >= 0 && at+1 < len(kids) && kids[at+1] == pgno {
			kr.parent, kr.kids, kr.pos = l.parent.key, kids, at+1
			kr.run, kr.w = 2, aheadWindow{ahead: at + 1}
			return
		}
	}
}

// readAhead tops up the window of children read ahead of the scan.
func (kr *keyRun) readAhead(ctx context.Context, r *replica, v *index.Version, scope *raScope) {
	from, to, ok := kr.w.topUp(kr.pos, len(kr.kids)-1, keyFirst, aheadMost(r, v.PageSize()))
	if !ok {
		return // enough is on its way, or all of this page's children
	}
	readAheadPages(ctx, r, v, scope, slices.Values(kr.kids[from:to+1]), to-from+1)
}
