package vfs

import (
	"encoding/binary"
	"slices"
)

// What the VFS reads of SQLite's B-tree pages
// (https://sqlite.org/fileformat.html#b_tree_pages): the kind of a page, and
// the children of an interior one. It reads them only to guess which pages
// to fetch before SQLite asks for them: what a page says decides what is
// prefetched, never what is served, so a page that only looks like a
// B-tree page (an overflow or freelist page whose first byte happens to
// match) costs at most a wasted read.
const (
	btreeInteriorIndex = 0x02
	btreeInteriorTable = 0x05
	btreeLeafIndex     = 0x0a
	btreeLeafTable     = 0x0d

	btreeInteriorHeader = 12 // type, freeblock, cells, content start, fragments, right-most child
)

// pageKind is what a page is to the B-tree walk.
type pageKind uint8

const (
	otherPage    pageKind = iota // overflow, freelist, lock page, or not a B-tree page
	leafPage                     // a table or index leaf
	interiorPage                 // a table or index interior page
)

// btreeHeader is where the B-tree page header of page pgno starts: after
// the database header on page 1.
func btreeHeader(pgno uint32) int {
	if pgno == 1 {
		return hdrSize
	}
	return 0
}

// kindOf tells the kind of page pgno from its first header byte.
func kindOf(page []byte, pgno uint32) pageKind {
	at := btreeHeader(pgno)
	if len(page) <= at {
		return otherPage
	}
	switch page[at] {
	case btreeLeafTable, btreeLeafIndex:
		return leafPage
	case btreeInteriorTable, btreeInteriorIndex:
		return interiorPage
	}
	return otherPage
}

// childrenOf returns the child page numbers of interior page pgno, sorted
// and without duplicates, or nil if the page does not hold a well-formed
// interior header and cell array: every child between 2 and commit.
func childrenOf(page []byte, pgno, commit uint32) []uint32 {
	kids := childrenInOrder(page, pgno, commit)
	if kids == nil {
		return nil
	}
	slices.Sort(kids)
	return slices.Compact(kids)
}

// childrenInOrder returns the child page numbers of interior page pgno in
// key order (its cells' left pointers in cell order, then its right-most
// pointer), or nil as childrenOf does.
func childrenInOrder(page []byte, pgno, commit uint32) []uint32 {
	at := btreeHeader(pgno)
	if len(page) < at+btreeInteriorHeader {
		return nil
	}
	cells := int(binary.BigEndian.Uint16(page[at+3:]))
	ptrs := at + btreeInteriorHeader
	if ptrs+2*cells > len(page) {
		return nil
	}
	valid := func(c uint32) bool { return c >= 2 && c <= commit && c != pgno }
	kids := make([]uint32, 0, cells+1)
	for i := range cells {
		off := int(binary.BigEndian.Uint16(page[ptrs+2*i:]))
		if off < ptrs+2*cells || off+4 > len(page) {
			return nil
		}
		c := binary.BigEndian.Uint32(page[off:])
		if !valid(c) {
			return nil
		}
		kids = append(kids, c)
	}
	right := binary.BigEndian.Uint32(page[at+8:])
	if !valid(right) {
		return nil
	}
	return append(kids, right)
}

// isChild reports whether child is a child of interior page pgno: one of
// its cells' left pointers or its right-most pointer. It reads the page in
// place (a warm lookup calls it for each page on its way).
func isChild(page []byte, pgno, child uint32) bool {
	at := btreeHeader(pgno)
	if len(page) < at+btreeInteriorHeader {
		return false
	}
	if binary.BigEndian.Uint32(page[at+8:]) == child {
		return true
	}
	cells := int(binary.BigEndian.Uint16(page[at+3:]))
	ptrs := at + btreeInteriorHeader
	if ptrs+2*cells > len(page) {
		return false
	}
	for i := range cells {
		off := int(binary.BigEndian.Uint16(page[ptrs+2*i:]))
		if off+4 <= len(page) && binary.BigEndian.Uint32(page[off:]) == child {
			return true
		}
	}
	return false
}
