package pagecache

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// TestPrefetch: the pages of one file are read with one request, those of
// another file with another, and then served from memory.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 40)
	counting := storagetest.NewCounting(file.New(dir))
	c := New(counting, Options{})

	var refs []Ref
	for pgno := uint32(5); pgno <= 30; pgno += 2 { // every other page: small gaps
		refs = append(refs, files[0].refs[pgno])
	}
	refs = append(refs, files[1].refs[3], files[1].refs[1], files[0].refs[5]) // unsorted, a duplicate
	if err := c.Prefetch(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if n := counting.Counts().Opens; n != 2 {
		t.Fatalf("prefetch of pages of 2 files made %d reads, want 2", n)
	}
	for _, ref := range refs {
		f := files[0]
		if ref.File == files[1].key {
			f = files[1]
		}
		page, err := c.Page(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(page, f.pages[ref.Pgno]) {
			t.Fatalf("page %d of %s: wrong bytes", ref.Pgno, ref.File.name())
		}
	}
	if n := counting.Counts().Opens; n != 2 {
		t.Fatalf("reading prefetched pages made %d more reads", n-2)
	}

	// What is held is not read again.
	if err := c.Prefetch(ctx, refs); err != nil || counting.Counts().Opens != 2 {
		t.Fatalf("prefetch of held pages: %v, %d reads", err, counting.Counts().Opens-2)
	}
}

func TestPrefetchBadFrame(t *testing.T) {
	dir, files := newTestReplica(t, 10)
	c := New(file.New(dir), Options{})
	bad := files[0].refs[4]
	bad.Pgno = 7 // the frame holds page 4
	err := c.Prefetch(context.Background(), []Ref{files[0].refs[3], bad})
	if err == nil || c.Contains(bad.Key) {
		t.Fatalf("prefetch of a wrong frame: %v", err)
	}
}

func TestRuns(t *testing.T) {
	fa, fb := FileKey{MinTXID: 1, MaxTXID: 1}, FileKey{MinTXID: 2, MaxTXID: 2}
	ref := func(f FileKey, off, size int64) Ref {
		return Ref{Key: Key{File: f, Pgno: uint32(off)}, Offset: off, Size: size, PageSize: 4096}
	}
	refs := []Ref{
		ref(fa, 100, 50), ref(fa, 150, 50), ref(fa, 200+maxGap, 50), // gap of exactly maxGap: one run
		ref(fa, 250+2*maxGap+1, 50), // gap of maxGap+1: a new run
		ref(fb, 100, 50),            // another file
		ref(fb, 150, maxRun),        // past maxRun from the run's start
	}
	var got [][]int64
	for run := range runs(refs) {
		var offs []int64
		for _, r := range run {
			offs = append(offs, r.Offset)
		}
		got = append(got, offs)
	}
	want := [][]int64{{100, 150, 200 + maxGap}, {250 + 2*maxGap + 1}, {100}, {150}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("runs %v, want %v", got, want)
	}
}
