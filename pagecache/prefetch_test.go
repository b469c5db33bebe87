package pagecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// TestPrefetch: the pages of one file are read with one request, those of
// another file with another, and then served from memory.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 40)
	counting := wrap.NewCounting(file.New(dir))
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
	for run := range runs(refs, maxRun) {
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

// TestScanKeepsHotPages: pages read once (a scan, whether its pages were
// missed or read ahead first) cycle through probation and leave the pages
// read twice, and those Put, held.
func TestScanKeepsHotPages(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		t.Run(fmt.Sprintf("ahead=%v", ahead), func(t *testing.T) {
			ctx := context.Background()
			dir, files := newTestReplica(t, 200)
			f := files[0]
			budget := int64(20 * (pageSize + entryOverhead))
			c := New(file.New(dir), Options{MaxBytes: budget})
			for pgno := uint32(4); pgno <= 8; pgno++ { // read twice: hot
				for range 2 {
					if _, err := c.Page(ctx, f.refs[pgno]); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := f.refs[9]
			if err := c.Put(r.Key, pageSize, f.data[r.Offset:r.Offset+r.Size]); err != nil {
				t.Fatal(err)
			}
			for pgno := uint32(10); pgno <= 200; pgno++ { // a scan
				if ahead && pgno%4 == 2 {
					// Read the next 4 pages ahead, as the vfs does.
					var next []Ref
					for p := pgno; p < min(pgno+4, 201); p++ {
						next = append(next, f.refs[p])
					}
					if err := c.Prefetch(ctx, next); err != nil {
						t.Fatal(err)
					}
				}
				page, err := c.Page(ctx, f.refs[pgno])
				if err != nil || !bytes.Equal(page, f.pages[pgno]) {
					t.Fatalf("page %d: %v", pgno, err)
				}
				checkBudget(t, c, budget)
			}
			for pgno := uint32(4); pgno <= 9; pgno++ {
				if !c.Contains(f.refs[pgno].Key) {
					t.Fatalf("hot page %d was pushed out by a scan", pgno)
				}
			}
		})
	}
}

// TestPrefetchAsync: pages read ahead are read once, in parallel, and a
// caller asking for one while it is on its way waits for it.
func TestPrefetchAsync(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 40)
	f := files[0]
	counting := wrap.NewCounting(file.New(dir))
	gated := newGated(counting)
	c := New(gated, Options{})
	defer c.Close()
	var refs []Ref
	for pgno := uint32(2); pgno <= 40; pgno++ {
		refs = append(refs, f.refs[pgno])
	}
	c.PrefetchAsync(ctx, refs)
	c.PrefetchAsync(ctx, refs) // claimed already: no second read
	got := make(chan []byte)
	waiting := &doneWatch{Context: ctx, called: make(chan struct{})}
	go func() {
		page, err := c.Page(waiting, f.refs[30])
		if err != nil {
			t.Error(err)
		}
		got <- page
	}()
	// The caller is blocked before the gate opens: on the read ahead, or
	// on a read of its own, which the misses below catch.
	<-waiting.called
	gated.open()
	if page := <-got; !bytes.Equal(page, f.pages[30]) {
		t.Fatal("wrong bytes")
	}
	if n := c.Stats().Misses; n != 0 {
		t.Fatalf("the caller read a page on its way itself (%d misses)", n)
	}
	waitFor(t, "the reads ahead to end", func() bool { return c.Stats().Pages == 39 })
	for _, ref := range refs {
		if page, err := c.Page(ctx, ref); err != nil || !bytes.Equal(page, f.pages[ref.Pgno]) {
			t.Fatalf("page %d: %v", ref.Pgno, err)
		}
	}
	if n := counting.Counts().Opens; n != 1 {
		t.Fatalf("%d reads for 39 adjacent small pages read ahead twice, want 1", n)
	}
}

// doneWatch is a context that tells when someone first waits on it.
type doneWatch struct {
	context.Context
	called chan struct{}
	once   sync.Once
}

func (w *doneWatch) Done() <-chan struct{} {
	w.once.Do(func() { close(w.called) })
	return w.Context.Done()
}

// TestPrefetchAsyncFailsNothing: a read ahead that fails keeps nothing, and
// the caller that wanted the page reads it itself.
func TestPrefetchAsyncFailsNothing(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 10)
	f := files[0]
	failing := &failFirst{Client: file.New(dir)}
	c := New(failing, Options{})
	defer c.Close()
	c.PrefetchAsync(ctx, []Ref{f.refs[3], f.refs[4]})
	waitFor(t, "the read ahead to fail", func() bool { return c.Stats().ReadaheadErrors == 1 })
	if page, err := c.Page(ctx, f.refs[3]); err != nil || !bytes.Equal(page, f.pages[3]) {
		t.Fatalf("page after a failed read ahead: %v", err)
	}
}

// TestCloseEndsReadsAhead: Close stops reads ahead that wait on storage,
// and later reads ahead do nothing.
func TestCloseEndsReadsAhead(t *testing.T) {
	dir, files := newTestReplica(t, 10)
	f := files[0]
	counting := wrap.NewCounting(file.New(dir))
	gated := newGated(counting) // never opened
	c := New(gated, Options{})
	c.PrefetchAsync(context.Background(), []Ref{f.refs[3]})
	c.PrefetchAsync(context.Background(), []Ref{f.refs[7]})
	c.Close() // returns: the reads waiting on the gate end with the cache
	c.PrefetchAsync(context.Background(), []Ref{f.refs[5]})
	if n := counting.Counts().Opens; n != 0 {
		t.Fatalf("%d reads reached storage", n)
	}
	gated.open()
	if page, err := c.Page(context.Background(), f.refs[3]); err != nil || !bytes.Equal(page, f.pages[3]) {
		t.Fatalf("page after Close: %v", err)
	}
}

// failFirst fails its first ranged read.
type failFirst struct {
	storage.Client
	once sync.Once
}

func (c *failFirst) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	var fail bool
	c.once.Do(func() { fail = true })
	if fail {
		return nil, errors.New("injected failure")
	}
	return c.Client.OpenLTXFile(ctx, level, min, max, off, size)
}

// TestPrefetchAsyncEndsWithItsContext: reads ahead end with the context of
// the query that asked for them, and a caller waiting for one of their
// pages then reads it itself.
func TestPrefetchAsyncEndsWithItsContext(t *testing.T) {
	dir, files := newTestReplica(t, 10)
	f := files[0]
	gated := newGated(file.New(dir)) // every read waits for the gate or its context
	c := New(gated, Options{})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c.PrefetchAsync(ctx, []Ref{f.refs[3], f.refs[4]})
	got := make(chan error, 1)
	go func() {
		page, err := c.Page(context.Background(), f.refs[3])
		if err == nil && !bytes.Equal(page, f.pages[3]) {
			err = errors.New("wrong bytes")
		}
		got <- err
	}()
	cancel()
	waitFor(t, "the read ahead to end", func() bool { return c.Stats().ReadaheadErrors == 1 })
	gated.open()
	if err := <-got; err != nil {
		t.Fatalf("the caller waiting for a cancelled read ahead: %v", err)
	}
}

// TestPageOvertakesAStuckReadAhead: a caller whose page a read ahead is
// bringing, while that read hangs on storage, waits for it only a while,
// then reads the page itself under its own context, and returns while the
// stuck read is still blocked.
func TestPageOvertakesAStuckReadAhead(t *testing.T) {
	dir, files := newTestReplica(t, 10)
	f := files[0]
	// Reads started while FirstByte is an hour hang until their context
	// ends, and keep hanging after it is set back.
	faulty := wrap.NewFaulty(file.New(dir), wrap.FaultyConfig{Open: wrap.Behaviour{FirstByte: time.Hour}})
	counting := wrap.NewCounting(faulty)
	c := New(counting, Options{})
	defer c.Close()
	c.patience = time.Millisecond
	c.PrefetchAsync(context.Background(), []Ref{f.refs[3], f.refs[4], f.refs[5]})
	waitFor(t, "the read ahead to reach storage", func() bool { return counting.Counts().InFlight == 1 })
	faulty.SetBehaviour(wrap.OpOpen, wrap.Behaviour{}) // storage answers again

	// The deadline only keeps the test from hanging where Page would wait
	// for the stuck read: it fails there.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, pgno := range []uint32{4, 5} {
		page, err := c.Page(ctx, f.refs[pgno])
		if err != nil || !bytes.Equal(page, f.pages[pgno]) {
			t.Fatalf("page %d while its read ahead hangs: %v", pgno, err)
		}
	}
	s := c.Stats()
	if n := counting.Counts().InFlight; n != 1 || s.ReadaheadStuck != 2 || s.Misses != 2 {
		t.Fatalf("%d reads in flight, stats %+v: want the stuck read still in flight, and 2 pages read past it", n, s)
	}
	if n := counting.Counts().Opens; n != 3 {
		t.Fatalf("%d reads, want the read ahead and one for each page", n)
	}
}
