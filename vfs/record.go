package vfs

import (
	"encoding/binary"
	"sort"
)

// What the VFS reads of the rows on SQLite's B-tree pages
// (https://sqlite.org/fileformat.html#b_tree_pages and #record_format): the
// keys of a leaf, the integer columns of its rows, and which child of an
// interior page holds an integer key. As for btree.go, what it reads
// decides what is prefetched (join.go), never what is served: a page it
// cannot read, or reads wrong, costs at most reads for nothing. Only
// integer keys are read: a rowid, or an index whose first column holds
// integers.

// joinCols is how many columns of a row are read for integers.
const joinCols = 16

// varint decodes SQLite's big-endian variable-length integer at the start
// of b: its value and length, 0 if b ends first.
func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	if len(b) < 9 {
		return 0, 0
	}
	return v<<8 | uint64(b[8]), 9
}

// rowInts holds the integer columns of a row: vals[c] where ok has bit c.
type rowInts struct {
	vals [joinCols]int64
	ok   uint32
	n    int // the record's columns, if it has at most joinCols (else 0)
}

// last is the integer of the record's last column: an index entry's rowid.
func (r rowInts) last() (int64, bool) {
	if r.n == 0 || r.ok&(1<<(r.n-1)) == 0 {
		return 0, false
	}
	return r.vals[r.n-1], true
}

// recordInts reads the integer columns among the first joinCols of the
// record rec (as much of it as lies on the page). A column it cannot read
// (not an integer, or past the end of rec) is left out.
func recordInts(rec []byte) rowInts {
	var r rowInts
	hs, n := varint(rec)
	if n == 0 || hs > uint64(len(rec)) || hs < uint64(n) {
		return r
	}
	at, body := n, int(hs)
	c := 0
	for ; c < joinCols && at < int(hs); c++ {
		st, m := varint(rec[at:int(hs)])
		if m == 0 {
			return r
		}
		at += m
		size, isInt := serialSize(st)
		if isInt && body+size <= len(rec) {
			r.vals[c] = serialInt(st, rec[body:body+size])
			r.ok |= 1 << c
		}
		if size > len(rec) {
			return r
		}
		body += size
	}
	if at == int(hs) {
		r.n = c
	}
	return r
}

// serialSize is the size of a value of serial type st, and whether it is
// an integer.
func serialSize(st uint64) (int, bool) {
	switch {
	case st <= 4:
		return int(st), st != 0
	case st == 5:
		return 6, true
	case st == 6:
		return 8, true
	case st == 7:
		return 8, false
	case st == 8 || st == 9:
		return 0, true
	case st >= 12:
		return int(min((st-12)/2, 1<<30)), false
	}
	return 0, false // 10, 11: reserved
}

// serialInt is the integer of serial type st stored in b.
func serialInt(st uint64, b []byte) int64 {
	switch st {
	case 8:
		return 0
	case 9:
		return 1
	}
	var v int64
	if len(b) > 0 && b[0]&0x80 != 0 {
		v = -1
	}
	for _, x := range b {
		v = v<<8 | int64(x)
	}
	return v
}

// treePage is a B-tree page as join.go reads it: the page, its number (page
// 1 starts after the database header) and the usable size of the database's
// pages (their size less the reserved bytes).
type treePage struct {
	data   []byte
	pgno   uint32
	usable int
}

// kind is the page's B-tree page type byte, 0 if there is none.
func (p treePage) kind() byte {
	at := btreeHeader(p.pgno)
	if len(p.data) <= at {
		return 0
	}
	return p.data[at]
}

// cells is the number of cells of the page, or -1 if its cell pointer
// array does not fit.
func (p treePage) cells() int {
	at := btreeHeader(p.pgno)
	hdr := 8
	if k := p.kind(); k == btreeInteriorIndex || k == btreeInteriorTable {
		hdr = btreeInteriorHeader
	}
	if len(p.data) < at+hdr {
		return -1
	}
	n := int(binary.BigEndian.Uint16(p.data[at+3:]))
	if at+hdr+2*n > len(p.data) {
		return -1
	}
	return n
}

// cell is the bytes of cell i, from its start to the end of the page, or
// nil.
func (p treePage) cell(i int) []byte {
	at := btreeHeader(p.pgno)
	hdr := 8
	if k := p.kind(); k == btreeInteriorIndex || k == btreeInteriorTable {
		hdr = btreeInteriorHeader
	}
	off := int(binary.BigEndian.Uint16(p.data[at+hdr+2*i:]))
	if off < at+hdr || off >= len(p.data) {
		return nil
	}
	return p.data[off:]
}

// payload is what lies on the page of a cell's payload that starts with
// its size (a varint) at the start of c, after which skip varints (a
// table leaf's rowid) come before the payload itself; maxLocal bounds the
// part kept on the page, as SQLite computes it for the page's kind. first
// is the last varint skipped (the rowid, when skip is 1).
func (p treePage) payload(c []byte, skip, maxLocal int) (rec []byte, first uint64) {
	size, n := varint(c)
	if n == 0 {
		return nil, 0
	}
	c = c[n:]
	for range skip {
		v, m := varint(c)
		if m == 0 {
			return nil, 0
		}
		c, first = c[m:], v
	}
	local := size
	if size > uint64(maxLocal) {
		u := uint64(p.usable)
		m := (u-12)*32/255 - 23
		local = m + (size-m)%(u-4)
		if local > uint64(maxLocal) {
			local = m
		}
	}
	return c[:min(local, uint64(len(c)))], first
}

// leafRow is the key of row i of a leaf (its rowid on a table leaf, its
// first column on an index leaf; ok false if that is no integer) and its
// integer columns.
func (p treePage) leafRow(i int) (key int64, cols rowInts, ok bool) {
	c := p.cell(i)
	if c == nil || p.usable < 480 {
		return 0, rowInts{}, false
	}
	switch p.kind() {
	case btreeLeafTable:
		rec, id := p.payload(c, 1, p.usable-35)
		if rec == nil {
			return 0, rowInts{}, false
		}
		return int64(id), recordInts(rec), true
	case btreeLeafIndex:
		rec, _ := p.payload(c, 0, (p.usable-12)*64/255-23)
		cols = recordInts(rec)
		return cols.vals[0], cols, cols.ok&1 != 0
	}
	return 0, rowInts{}, false
}

// keyRange is the smallest and largest key of a leaf (see leafRow).
func (p treePage) keyRange() (lo, hi int64, ok bool) {
	n := p.cells()
	if n <= 0 {
		return 0, 0, false
	}
	lo, _, ok1 := p.leafRow(0)
	hi, _, ok2 := p.leafRow(n - 1)
	return lo, hi, ok1 && ok2 && lo <= hi
}

// childFor is the child of interior page p whose subtree a search for key
// goes down: the left child of the first cell whose key (a rowid, or an
// index entry's first column) is key or more, else the right-most child.
func (p treePage) childFor(key int64) (uint32, bool) {
	kind := p.kind()
	if kind != btreeInteriorTable && kind != btreeInteriorIndex {
		return 0, false
	}
	n := p.cells()
	if n < 0 || p.usable < 480 {
		return 0, false
	}
	bad := false
	i := sort.Search(n, func(i int) bool {
		c := p.cell(i)
		if len(c) < 5 {
			bad = true
			return true
		}
		var k int64
		if kind == btreeInteriorTable {
			id, m := varint(c[4:])
			if m == 0 {
				bad = true
				return true
			}
			k = int64(id)
		} else {
			rec, _ := p.payload(c[4:], 0, (p.usable-12)*64/255-23)
			cols := recordInts(rec)
			if cols.ok&1 == 0 {
				bad = true
				return true
			}
			k = cols.vals[0]
		}
		return k >= key
	})
	if bad {
		return 0, false
	}
	if i == n {
		return binary.BigEndian.Uint32(p.data[btreeHeader(p.pgno)+8:]), true
	}
	return binary.BigEndian.Uint32(p.cell(i)), true
}

// rowidsOf appends to into the rowids of the entries of index leaf p whose
// first column is key (the last column of each, the rowid of the table
// row it points to), at most joinMaxRowids of them.
func (p treePage) rowidsOf(key int64, into []int64) []int64 {
	if p.kind() != btreeLeafIndex {
		return into
	}
	n := p.cells()
	first := sort.Search(max(n, 0), func(i int) bool {
		k, _, ok := p.leafRow(i)
		return !ok || k >= key
	})
	for i, found := first, 0; i < n && found < joinMaxRowids; i, found = i+1, found+1 {
		k, cols, ok := p.leafRow(i)
		if !ok || k != key {
			break
		}
		if id, ok := cols.last(); ok {
			into = append(into, id)
		}
	}
	return into
}
