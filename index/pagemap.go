package index

import (
	"math"
	"slices"
)

// The page map is a two-level radix: a version holds a slice of pointers to
// fixed-size chunks, and versions share every chunk they do not change. A
// new file copies only the chunks its pages fall in (and the slice of
// pointers), so a reader pins a version for free and an update costs what
// it touches.
const (
	chunkShift = 9
	chunkSize  = 1 << chunkShift // pages per chunk
	chunkMask  = chunkSize - 1

	// maxChunkFiles bounds a chunk's file table so that slot.file fits in
	// 16 bits; a full table is compacted (at most chunkSize files are live).
	maxChunkFiles = math.MaxUint16
)

// slot locates one page version: 16 bytes, no pointers, so the garbage
// collector never scans the slots.
type slot struct {
	offset int64
	size   uint32 // frame size; 0 means no entry
	file   uint16 // index into chunk.files
}

// chunk holds the slots of chunkSize consecutive page numbers (page pgno is
// slot pgno&chunkMask of chunk pgno>>chunkShift) and the files they point
// into. A published chunk never changes, and its files are exactly those
// its slots refer to. The slots are an allocation of their own, exactly
// 8 KiB (a size class), so a page costs 16 bytes and no rounding.
type chunk struct {
	files []*File
	slots *[chunkSize]slot
}

// pageMap maps page numbers to slots; it is immutable once published.
type pageMap struct {
	chunks []*chunk
}

func (m pageMap) get(pgno uint32) (Entry, bool) {
	i := int(pgno >> chunkShift)
	if i >= len(m.chunks) || m.chunks[i] == nil {
		return Entry{}, false
	}
	c := m.chunks[i]
	s := &c.slots[pgno&chunkMask]
	if s.size == 0 {
		return Entry{}, false
	}
	return Entry{File: c.files[s.file], Offset: s.offset, Size: int64(s.size)}, true
}

// files returns every file the map refers to, in no particular order.
func (m pageMap) files() []*File {
	seen := map[*File]struct{}{}
	var out []*File
	for _, c := range m.chunks {
		if c == nil {
			continue
		}
		for _, f := range c.files {
			if _, ok := seen[f]; !ok {
				seen[f] = struct{}{}
				out = append(out, f)
			}
		}
	}
	return out
}

// mapBuilder makes a new pageMap from an old one, copying a chunk the first
// time it changes; chunks it made are its own to change in place until
// build.
type mapBuilder struct {
	chunks []*chunk
	owned  map[*chunk]bool
}

func newMapBuilder(base pageMap) *mapBuilder {
	return &mapBuilder{chunks: slices.Clone(base.chunks), owned: map[*chunk]bool{}}
}

// mutable returns chunk i ready to change, copying (or making) it first.
func (b *mapBuilder) mutable(i int) *chunk {
	if i >= len(b.chunks) {
		b.chunks = append(b.chunks, make([]*chunk, i+1-len(b.chunks))...)
	}
	c := b.chunks[i]
	if c != nil && b.owned[c] {
		return c
	}
	n := &chunk{slots: new([chunkSize]slot)}
	if c != nil {
		n.files = slices.Clone(c.files)
		*n.slots = *c.slots
	}
	b.chunks[i] = n
	b.owned[n] = true
	return n
}

// set points page pgno at a frame of f.
func (b *mapBuilder) set(pgno uint32, f *File, offset int64, size uint32) {
	c := b.mutable(int(pgno >> chunkShift))
	c.slots[pgno&chunkMask] = slot{offset: offset, size: size, file: c.fileIndex(f)}
}

// truncate drops every page above commit: after a shrink to commit pages,
// no older version of those pages may ever be served again, even if the
// database grows back over them.
func (b *mapBuilder) truncate(commit uint32) {
	keep := int(commit>>chunkShift) + 1
	if keep < len(b.chunks) {
		clear(b.chunks[keep:])
		b.chunks = b.chunks[:keep]
	}
	i := int(commit >> chunkShift)
	if i >= len(b.chunks) || b.chunks[i] == nil {
		return
	}
	from := int(commit&chunkMask) + 1
	for j := from; j < chunkSize; j++ {
		if b.chunks[i].slots[j].size != 0 {
			c := b.mutable(i)
			clear(c.slots[from:])
			return
		}
	}
}

// entry returns the entry of pgno, if any.
func (b *mapBuilder) entry(pgno uint32) (Entry, bool) {
	return pageMap{chunks: b.chunks}.get(pgno)
}

// build compacts the file tables of the chunks it changed and returns the
// new map; the builder must not be used after.
func (b *mapBuilder) build() pageMap {
	for c := range b.owned {
		c.compact()
	}
	n := len(b.chunks)
	for n > 0 && (b.chunks[n-1] == nil || b.chunks[n-1].empty()) {
		n--
	}
	clear(b.chunks[n:])
	return pageMap{chunks: slices.Clip(b.chunks[:n])}
}

// fileIndex returns f's index in the chunk's file table, adding it.
func (c *chunk) fileIndex(f *File) uint16 {
	// A file's pages are set in page order, so within a chunk the file
	// being applied is the one added last, or new. (Were it named twice,
	// the table would only hold a duplicate until the next compaction.)
	if n := len(c.files); n > 0 && c.files[n-1] == f {
		return uint16(n - 1)
	}
	if len(c.files) >= maxChunkFiles {
		c.compact()
	}
	c.files = append(c.files, f)
	return uint16(len(c.files) - 1)
}

// compact drops the files no slot refers to any more and renumbers the
// slots, keeping the files' order.
func (c *chunk) compact() {
	used := make([]bool, len(c.files))
	for i := range c.slots {
		if c.slots[i].size != 0 {
			used[c.slots[i].file] = true
		}
	}
	remap := make([]uint16, len(c.files))
	files := c.files[:0:0]
	for i, f := range c.files {
		if used[i] {
			remap[i] = uint16(len(files))
			files = append(files, f)
		}
	}
	if len(files) == len(c.files) {
		return
	}
	for i := range c.slots {
		if c.slots[i].size != 0 {
			c.slots[i].file = remap[c.slots[i].file]
		}
	}
	c.files = slices.Clip(files)
}

func (c *chunk) empty() bool { return len(c.files) == 0 }
