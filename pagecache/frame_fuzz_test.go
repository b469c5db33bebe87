package pagecache

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// FuzzFrame feeds arbitrary bytes to the frame check, as frames the page
// index points at: data is stored right after a file's header and read as
// one frame with Page, or, when cut falls inside it, as two frames back to
// back read with one Prefetch (the coalesced read decodes sub-slices); and
// handed to Put, as an index hands over the frames it read.
// Properties: never a panic; an error names the file and the page; a page
// is exactly PageSize bytes, comes from a frame whose header names the page
// asked for, and is what the ltx library decodes from that frame.
func FuzzFrame(f *testing.F) {
	fuzzseed.Write(f, frameSeeds(f))
	f.Fuzz(func(t *testing.T, data []byte, pgno uint32, sizeShift byte, cut uint16) {
		pageSize := uint32(512) << (sizeShift % 8) // 512 .. 64 KiB
		if sizeShift == 0xff {
			pageSize = 1000 // not a page size: refused before any read
		}
		file := append(make([]byte, ltx.HeaderSize), data...)
		mem := mem.New()
		mem.Put(0, 2, 2, file, time.Time{})
		fk := FileKey{Level: 0, MinTXID: 2, MaxTXID: 2, Checksum: 7}
		ref := func(pgno uint32, off, size int) Ref {
			return Ref{Key: Key{File: fk, Pgno: pgno}, Offset: int64(ltx.HeaderSize + off), Size: int64(size), PageSize: pageSize}
		}
		c := New(mem, Options{})
		ctx := context.Background()

		frames := []Ref{ref(pgno, 0, len(data))}
		if int(cut) > 0 && int(cut) < len(data) {
			frames = []Ref{ref(pgno, 0, int(cut)), ref(pgno+1, int(cut), len(data)-int(cut))}
			if err := c.Prefetch(ctx, frames); err != nil {
				checkFrameError(t, err, frames...)
			}
		}
		// The whole of data, handed over: if Put keeps it, the last ref
		// below reads it from the cache it was put in.
		put, whole := New(mem, Options{}), ref(pgno, 0, len(data))
		n := len(frames)
		if err := put.Put(whole.Key, pageSize, data); err != nil {
			checkFrameError(t, err, whole)
		} else if !put.Contains(whole.Key) {
			t.Fatalf("page %d: Put succeeded and holds nothing", pgno)
		} else {
			frames = append(frames, whole)
		}
		for i, r := range frames {
			c := c
			if i == n {
				c = put
			}
			prefetched := c.Contains(r.Key)
			page, err := c.Page(ctx, r)
			if err != nil {
				if prefetched {
					t.Fatalf("page %d: held after Prefetch, then %v", r.Pgno, err)
				}
				checkFrameError(t, err, r)
				continue
			}
			frame := file[r.Offset : r.Offset+r.Size]
			if len(page) != int(pageSize) {
				t.Fatalf("page %d: %d bytes, want %d", r.Pgno, len(page), pageSize)
			}
			if got := binary.BigEndian.Uint32(frame); got != r.Pgno {
				t.Fatalf("page %d served from a frame of page %d", r.Pgno, got)
			}
			if _, want, err := ltx.DecodePageData(frame); err != nil || !bytes.Equal(page, want) {
				t.Fatalf("page %d: served bytes the ltx library does not decode from the frame (%v)", r.Pgno, err)
			}
		}
	})
}

// checkFrameError: an error names the file and one of the pages asked for.
func checkFrameError(t *testing.T, err error, refs ...Ref) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, refs[0].File.name()) {
		t.Fatalf("error does not name %s: %v", refs[0].File.name(), err)
	}
	for _, r := range refs {
		if strings.Contains(msg, fmt.Sprintf("page %d", r.Pgno)) || strings.Contains(msg, fmt.Sprintf("pages %d-", r.Pgno)) {
			return
		}
	}
	t.Fatalf("error does not name the page: %v", err)
}

// frameSeeds are real frames of both encodings' sizes and page sizes, and
// frames damaged the ways a bad index or file would give them.
func frameSeeds(tb testing.TB) []fuzzseed.Seed {
	if !fuzzseed.Writing() {
		return nil
	}
	var seeds []fuzzseed.Seed
	for _, ps := range []uint32{512, 4096, 65536} {
		db := storagetest.NewDB(ps)
		db.Now = func() time.Time { return time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC) }
		zero := make([]byte, ps)
		b := db.Apply(tb, 3, map[uint32][]byte{1: storagetest.FillPage(ps, 1, 1), 2: zero, 3: storagetest.FillPage(ps, 3, 1)})
		dec := ltx.NewDecoder(bytes.NewReader(b))
		if err := dec.Verify(); err != nil {
			tb.Fatal(err)
		}
		idx := dec.PageIndex()
		frame := func(pgno uint32) []byte { e := idx[pgno]; return b[e.Offset : e.Offset+e.Size] }
		shift := byte(0)
		for 512<<shift != ps {
			shift++
		}
		name := func(s string) string { return fmt.Sprintf("%s-%d", s, ps) }
		two := append(bytes.Clone(frame(1)), frame(2)...)
		seeds = append(seeds,
			fuzzseed.New(name("page"), frame(1), uint32(1), shift, uint16(0)),
			fuzzseed.New(name("zero-page"), frame(2), uint32(2), shift, uint16(0)),
			fuzzseed.New(name("two-frames"), two, uint32(1), shift, uint16(len(frame(1)))),
			fuzzseed.New(name("other-page"), frame(3), uint32(2), shift, uint16(0)),
			fuzzseed.New(name("cut-short"), frame(1)[:len(frame(1))-3], uint32(1), shift, uint16(0)),
			fuzzseed.New(name("overlong"), two, uint32(1), shift, uint16(0)),
			fuzzseed.New(name("wrong-page-size"), frame(1), uint32(1), shift+1, uint16(0)),
		)
	}
	seeds = append(seeds,
		fuzzseed.New("empty", []byte{}, uint32(1), byte(0), uint16(0)),
		fuzzseed.New("header-only", []byte{0, 0, 0, 1, 0, 1}, uint32(1), byte(0), uint16(0)),
		fuzzseed.New("not-a-page-size", []byte{0, 0, 0, 1, 0, 0, 1, 2, 3}, uint32(1), byte(0xff), uint16(0)),
	)
	return seeds
}
