package pagecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

const pageSize = 512

// testFile is an LTX file in a replica, with a Ref for each of its pages.
type testFile struct {
	key   FileKey
	refs  map[uint32]Ref
	pages map[uint32][]byte
	data  []byte
}

// newTestReplica writes a snapshot of n pages (L0 [1,1]) and an L0 [2,2]
// rewriting pages 1..3, and returns the replica's directory and files.
func newTestReplica(t testing.TB, n uint32) (string, []*testFile) {
	dir := t.TempDir()
	c := file.New(dir)
	db := storagetest.NewDB(pageSize)
	var files []*testFile
	for _, pgnos := range [][]uint32{nil, {1, 2, 3}} {
		pages := map[uint32][]byte{}
		if pgnos == nil {
			for p := uint32(1); p <= n; p++ {
				pgnos = append(pgnos, p)
			}
		}
		for _, p := range pgnos {
			pages[p] = storagetest.FillPage(pageSize, p, int(db.TXID())+1)
		}
		data := db.Apply(t, n, pages)
		txid := db.TXID()
		if _, err := c.WriteLTXFile(context.Background(), 0, txid, txid, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		files = append(files, describe(t, 0, data, pages))
	}
	return dir, files
}

// describe decodes an encoded file to find where each page's frame is.
func describe(t testing.TB, level int, data []byte, pages map[uint32][]byte) *testFile {
	dec := ltx.NewDecoder(bytes.NewReader(data))
	if err := dec.Verify(); err != nil {
		t.Fatal(err)
	}
	hdr := dec.Header()
	f := &testFile{
		key:   FileKey{Level: level, MinTXID: hdr.MinTXID, MaxTXID: hdr.MaxTXID, Checksum: dec.Trailer().FileChecksum},
		refs:  map[uint32]Ref{},
		pages: pages,
		data:  data,
	}
	for pgno, e := range dec.PageIndex() {
		f.refs[pgno] = Ref{Key: Key{File: f.key, Pgno: pgno}, Offset: e.Offset, Size: e.Size, PageSize: pageSize}
	}
	return f
}

// gatedClient holds every OpenLTXFile until its gate is opened (or the
// request's context ends), so tests can line callers up behind one read.
type gatedClient struct {
	storage.Client
	gate chan struct{}
	once sync.Once
}

func newGated(c storage.Client) *gatedClient {
	return &gatedClient{Client: c, gate: make(chan struct{})}
}

func (g *gatedClient) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedClient) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, off, size int64) (io.ReadCloser, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Client.OpenLTXFile(ctx, level, min, max, off, size)
}

// waitFor polls cond until it holds; the test fails after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
	}
}

func checkBudget(t *testing.T, c *Cache, max int64) {
	t.Helper()
	if s := c.Stats(); s.UsedBytes > max || s.UsedBytes != s.Pages*(pageSize+entryOverhead) {
		t.Fatalf("%d pages use %d bytes of a %d-byte budget", s.Pages, s.UsedBytes, max)
	}
}

func TestPageHitAndMiss(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 10)
	counting := wrap.NewCounting(file.New(dir))
	c := New(counting, Options{})
	for _, f := range files {
		for pgno, ref := range f.refs {
			for range 2 {
				got, err := c.Page(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, f.pages[pgno]) {
					t.Fatalf("page %d of %s: wrong bytes", pgno, f.key.name())
				}
			}
		}
	}
	n := int64(len(files[0].refs) + len(files[1].refs))
	s := c.Stats()
	if s.Misses != n || s.Hits != n || s.Requests != n || s.Pages != n || s.Evictions != 0 {
		t.Fatalf("stats %+v, want %d misses, hits, requests and pages", s, n)
	}
	if cs := counting.Counts(); cs.Opens != n || cs.BytesRead != s.Bytes {
		t.Fatalf("storage saw %d reads of %d bytes; the cache counted %d of %d", cs.Opens, cs.BytesRead, s.Requests, s.Bytes)
	}
}

func TestEvictionKeepsTheBudget(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 20)
	f := files[0]
	budget := int64(3*(pageSize+entryOverhead) + 100)
	c := New(file.New(dir), Options{MaxBytes: budget})
	read := func(pgno uint32) {
		t.Helper()
		got, err := c.Page(ctx, f.refs[pgno])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.pages[pgno]) {
			t.Fatalf("page %d: wrong bytes", pgno)
		}
		checkBudget(t, c, budget)
	}
	read(1)
	read(2)
	read(3)
	read(1) // now 2 is the least recently used
	read(4)
	if !c.Contains(f.refs[1].Key) || c.Contains(f.refs[2].Key) || !c.Contains(f.refs[4].Key) {
		t.Fatal("eviction did not drop the least recently used page")
	}
	for pgno := uint32(5); pgno <= 20; pgno++ {
		read(pgno)
	}
	if s := c.Stats(); s.Pages != 3 || s.Evictions != 17 {
		t.Fatalf("stats %+v, want 3 pages held and 17 evictions", s)
	}

	// A page larger than the whole budget is served, not kept.
	tiny := New(file.New(dir), Options{MaxBytes: pageSize})
	if got, err := tiny.Page(ctx, f.refs[1]); err != nil || !bytes.Equal(got, f.pages[1]) {
		t.Fatalf("page larger than the budget: %v", err)
	}
	if s := tiny.Stats(); s.Pages != 0 || s.UsedBytes != 0 {
		t.Fatalf("a cache smaller than a page holds %d pages, %d bytes", s.Pages, s.UsedBytes)
	}
}

// TestConcurrentPages: many readers over more pages than the budget holds,
// under -race: every page read is right and the budget always holds.
func TestConcurrentPages(t *testing.T) {
	dir, files := newTestReplica(t, 64)
	f := files[0]
	budget := int64(10 * (pageSize + entryOverhead))
	c := New(file.New(dir), Options{MaxBytes: budget})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for range 300 {
				pgno := uint32(rng.IntN(64)) + 1
				got, err := c.Page(context.Background(), f.refs[pgno])
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, f.pages[pgno]) {
					t.Errorf("page %d: wrong bytes", pgno)
					return
				}
				if s := c.Stats(); s.UsedBytes > budget {
					t.Errorf("%d bytes used of %d", s.UsedBytes, budget)
					return
				}
			}
		})
	}
	wg.Wait()
	checkBudget(t, c, budget)
}

// TestOneReadPerPage: concurrent callers for one cold page share one read.
func TestOneReadPerPage(t *testing.T) {
	dir, files := newTestReplica(t, 4)
	ref := files[0].refs[2]
	counting := wrap.NewCounting(file.New(dir))
	gated := newGated(counting)
	c := New(gated, Options{})

	const n = 16
	results := make(chan []byte, n)
	for range n {
		go func() {
			page, err := c.Page(context.Background(), ref)
			if err != nil {
				t.Error(err)
			}
			results <- page
		}()
	}
	waitFor(t, "every caller to miss", func() bool { return c.Stats().Misses == n })
	gated.open()
	for range n {
		if page := <-results; !bytes.Equal(page, files[0].pages[2]) {
			t.Fatal("a caller got wrong bytes")
		}
	}
	if opens := counting.Counts().Opens; opens != 1 {
		t.Fatalf("%d concurrent callers made %d reads, want 1", n, opens)
	}
}

// TestCancelledWaiter: a caller whose context ends returns at once, and the
// read it shared goes on for the others.
func TestCancelledWaiter(t *testing.T) {
	dir, files := newTestReplica(t, 4)
	ref := files[0].refs[2]
	counting := wrap.NewCounting(file.New(dir))
	gated := newGated(counting)
	c := New(gated, Options{})

	leader := make(chan error, 1)
	go func() {
		_, err := c.Page(context.Background(), ref)
		leader <- err
	}()
	waitFor(t, "the first caller to miss", func() bool { return c.Stats().Misses == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, err := c.Page(ctx, ref)
		waiter <- err
	}()
	waitFor(t, "the second caller to miss", func() bool { return c.Stats().Misses == 2 })
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
	}
	gated.open() // the read was still held: the waiter did not wait for it
	if err := <-leader; err != nil {
		t.Fatalf("the caller that kept waiting: %v", err)
	}
	if opens := counting.Counts().Opens; opens != 1 {
		t.Fatalf("%d reads, want 1", opens)
	}
}

// TestCancelledLeader: when the caller that started the read gives up, a
// caller still waiting reads the page itself.
func TestCancelledLeader(t *testing.T) {
	dir, files := newTestReplica(t, 4)
	ref := files[0].refs[2]
	gated := newGated(file.New(dir))
	c := New(gated, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := c.Page(ctx, ref)
		leader <- err
	}()
	waitFor(t, "the first caller to miss", func() bool { return c.Stats().Misses == 1 })
	waiter := make(chan []byte, 1)
	go func() {
		page, err := c.Page(context.Background(), ref)
		if err != nil {
			t.Error(err)
		}
		waiter <- page
	}()
	waitFor(t, "the second caller to miss", func() bool { return c.Stats().Misses == 2 })
	cancel()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled leader: %v", err)
	}
	gated.open()
	if page := <-waiter; !bytes.Equal(page, files[0].pages[2]) {
		t.Fatal("the waiter got wrong bytes")
	}
}

// TestBadFrames: a reference or a frame that does not give exactly the page
// asked for is an error naming the file and page, and is not cached.
func TestBadFrames(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 10)
	f := files[0]
	name := f.key.name()

	// A copy of the snapshot with page 4's compressed block damaged.
	damaged := bytes.Clone(f.data)
	r4 := f.refs[4]
	for i := r4.Offset + 10; i < r4.Offset+r4.Size; i++ {
		damaged[i] ^= 0x5a
	}
	path := storage.FilePath(dir, 1, 1, 1)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}

	wrongPgno := f.refs[5]
	wrongPgno.Pgno = 3
	overlong := f.refs[3]
	overlong.Size += f.refs[4].Size
	short := f.refs[3]
	short.Size -= 5
	pastEOF := f.refs[10]
	pastEOF.Size = int64(len(f.data)) - pastEOF.Offset + 100
	wrongPageSize := f.refs[3]
	wrongPageSize.PageSize = 1024
	damagedRef := f.refs[4] // the same frame, in the damaged copy at L1
	damagedRef.File.Level = 1

	tests := []struct {
		name    string
		ref     Ref
		file    string
		invalid bool
	}{
		{"frame of another page", wrongPgno, name, true},
		{"frame and the next", overlong, name, true},
		{"frame cut short", short, name, true},
		{"range past the end of the file", pastEOF, name, false},
		{"wrong page size", wrongPageSize, name, true},
		{"damaged block", damagedRef, "L1/0000000000000001-0000000000000001.ltx", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(file.New(dir), Options{})
			for range 2 { // errors are not cached: the same error twice
				page, err := c.Page(ctx, tt.ref)
				if err == nil {
					t.Fatalf("got a page: %q...", page[:16])
				}
				want := fmt.Sprintf("page %d from %s", tt.ref.Pgno, tt.file)
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error does not say %q: %v", want, err)
				}
				if tt.invalid && !errors.Is(err, ltx.ErrInvalidFile) {
					t.Fatalf("error does not match ltx.ErrInvalidFile: %v", err)
				}
			}
			if s := c.Stats(); s.Requests != 2 || s.Pages != 0 {
				t.Fatalf("stats %+v: want 2 requests and nothing held", s)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	dir, files := newTestReplica(t, 4)
	ref := files[1].refs[2]
	if err := os.Remove(storage.FilePath(dir, 0, 2, 2)); err != nil {
		t.Fatal(err)
	}
	_, err := New(file.New(dir), Options{}).Page(context.Background(), ref)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "page 2 from L0/0000000000000002-0000000000000002.ltx") {
		t.Fatalf("page of a deleted file: %v, want an error naming it that matches os.ErrNotExist", err)
	}
}

func TestInvalidRef(t *testing.T) {
	dir, files := newTestReplica(t, 4)
	c := New(file.New(dir), Options{})
	for _, mutate := range []func(*Ref){
		func(r *Ref) { r.Pgno = 0 },
		func(r *Ref) { r.Size = 0 },
		func(r *Ref) { r.Offset = 0 },
		func(r *Ref) { r.PageSize = 1000 },
	} {
		ref := files[0].refs[2]
		mutate(&ref)
		if _, err := c.Page(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "invalid reference") {
			t.Fatalf("ref %+v: %v", ref, err)
		}
	}
	if s := c.Stats(); s.Requests != 0 {
		t.Fatalf("invalid references made %d requests", s.Requests)
	}
}

func BenchmarkPageHit(b *testing.B) {
	dir, files := newTestReplica(b, 64)
	c := New(file.New(dir), Options{})
	ref := files[0].refs[7]
	if _, err := c.Page(context.Background(), ref); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Page(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPageHitParallel(b *testing.B) {
	dir, files := newTestReplica(b, 64)
	c := New(file.New(dir), Options{})
	ctx := context.Background()
	for _, ref := range files[0].refs {
		if _, err := c.Page(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
	refs := make([]Ref, 0, 64)
	for _, ref := range files[0].refs {
		refs = append(refs, ref)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Page(ctx, refs[i%len(refs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// TestPut: a frame read elsewhere is checked and kept, and then served
// without a request; a frame of another page is refused.
func TestPut(t *testing.T) {
	ctx := context.Background()
	dir, files := newTestReplica(t, 8)
	f := files[0]
	counting := wrap.NewCounting(file.New(dir))
	c := New(counting, Options{})
	r := f.refs[5]
	frame := f.data[r.Offset : r.Offset+r.Size]
	if err := c.Put(r.Key, pageSize, frame); err != nil {
		t.Fatal(err)
	}
	if page, err := c.Page(ctx, r); err != nil || !bytes.Equal(page, f.pages[5]) {
		t.Fatalf("page put: %v", err)
	}
	other := f.refs[6].Key
	if err := c.Put(other, pageSize, frame); !errors.Is(err, ltx.ErrInvalidFile) || !strings.Contains(err.Error(), "page 6 from "+f.key.name()) || c.Contains(other) {
		t.Fatalf("frame of page 5 put as page 6: %v", err)
	}
	if n := counting.Counts().Opens; n != 0 {
		t.Fatalf("%d requests", n)
	}
}
