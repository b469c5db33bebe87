package pagecache

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

const (
	// maxGap is how many unwanted bytes between two frames of a file a
	// coalesced read takes rather than making two requests: a request costs
	// 10-50 ms, 64 KiB well under 1 ms of transfer.
	maxGap = 64 << 10
	// maxRun bounds one coalesced read, so that a prefetch of many pages
	// still uses several connections.
	maxRun = 4 << 20
	// prefetchConcurrency bounds the reads of one Prefetch in flight.
	prefetchConcurrency = 8

	// asyncRun bounds one read ahead: object storage serves each request at
	// its own pace (~100 MB/s), so a window read in 1 MiB requests in
	// parallel arrives in about one round trip plus 10 ms.
	asyncRun = 1 << 20
	// asyncConcurrency bounds the reads ahead in flight per cache. The
	// caller's window bounds their bytes (the vfs package: a quarter of the
	// budget); many are small where the pages of a range lie in many files
	// (a replica's newest L0 files), and each costs a round trip however
	// small, so they all go at once.
	asyncConcurrency = 64

	// aheadPatience is how long after a read ahead claimed its pages Page
	// still waits for it rather than reading the page itself. A read ahead
	// normally lands in one round trip plus ~10 ms of transfer (a few
	// round trips when queued behind others), well within it; one still
	// under way by then is stuck (storage that hangs until the read's
	// context ends) or queued behind reads that are, and must not hold up
	// the queries that need its pages, whichever query started it.
	aheadPatience = time.Second
)

// aheadRead is one read ahead (PrefetchAsync) in flight; the pages it claims
// map to it in Cache.inflight.
type aheadRead struct {
	done  chan struct{} // closed when it ends, whatever the outcome
	since time.Time     // when its pages were claimed
}

// Prefetch reads the pages of refs that are not held yet and keeps them:
// frames of one file that lie close together are read with one ranged
// request, and the requests go out in parallel. It returns the first error
// (naming the file and page); the pages read before it are kept.
func (c *Cache) Prefetch(ctx context.Context, refs []Ref) error {
	want, err := c.wanted(refs)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prefetchConcurrency)
	for run := range runs(want, maxRun) {
		g.Go(func() error { return c.readRun(gctx, run, false) })
	}
	return g.Wait()
}

// PrefetchHot is Prefetch for pages the caller knows to be hot (B-tree
// interior pages it found, which every lookup through their tree needs):
// they are kept as hot pages (see segments), the disk tier serves those it
// holds without a request, and those read from storage are written there
// too, so that a reader started again finds them without storage, as it
// finds the pages its queries missed. Its reads all go out at once (the
// caller bounds how many pages it asks for), and one that fails does not
// cancel the others: what they bring is kept, and the first error is
// returned.
func (c *Cache) PrefetchHot(ctx context.Context, refs []Ref) error {
	want, err := c.wanted(refs)
	if err != nil {
		return err
	}
	if c.disk != nil {
		rest := want[:0:0]
		for _, ref := range want {
			if page, ok := c.disk.get(ref.Key, ref.PageSize); ok {
				c.keep(ref.Key, page, true)
			} else {
				rest = append(rest, ref)
			}
		}
		want = rest
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for run := range runs(want, maxRun) {
		wg.Go(func() {
			if err := c.readRun(ctx, run, true); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// PrefetchAsync starts reading, in the background, the pages of refs that
// are neither held nor being read, as Prefetch does but in smaller parallel
// requests, and returns at once. Page waits for a page being read this way
// rather than reading it again, but not past aheadPatience after this call:
// then it reads the page itself. The reads end with ctx (the caller ends
// it when the query that asked for them ends) or at Close, whichever comes
// first, and carry ctx's values; at most asyncConcurrency run at once per
// cache; a read that fails keeps nothing and fails nothing: the page is
// read when asked for.
func (c *Cache) PrefetchAsync(ctx context.Context, refs []Ref) {
	if c.bg.Err() != nil || ctx.Err() != nil {
		return
	}
	want, err := c.wanted(refs)
	if err != nil || len(want) == 0 {
		return
	}
	c.mu.Lock()
	var mine []Ref // not claimed meanwhile by another read ahead
	for _, ref := range want {
		if _, ok := c.inflight[ref.Key]; !ok && !c.pages.contains(ref.Key) {
			mine = append(mine, ref)
		}
	}
	if c.bg.Err() != nil {
		c.mu.Unlock()
		return // closed meanwhile (Close cancels bg under mu)
	}
	var batches [][]Ref
	var reads []*aheadRead
	now := time.Now()
	for run := range runs(mine, asyncRun) {
		read := &aheadRead{done: make(chan struct{}), since: now}
		for _, ref := range run {
			c.inflight[ref.Key] = read
		}
		batches, reads = append(batches, run), append(reads, read)
	}
	c.async.Add(len(batches) + 1)
	c.mu.Unlock()

	// The reads carry ctx's values (a caller's count of what its query
	// read, see the vfs package), and end with ctx or with the cache.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	stopBg := context.AfterFunc(c.bg, cancel)
	var wg sync.WaitGroup
	for i, run := range batches {
		wg.Go(func() { c.readAhead(rctx, run, reads[i]) })
	}
	go func() {
		defer c.async.Done()
		wg.Wait()
		stop()
		stopBg()
		cancel()
	}()
}

func (c *Cache) readAhead(ctx context.Context, run []Ref, read *aheadRead) {
	defer c.async.Done()
	defer func() {
		c.mu.Lock()
		for _, ref := range run {
			if c.inflight[ref.Key] == read {
				delete(c.inflight, ref.Key)
			}
		}
		c.mu.Unlock()
		close(read.done)
	}()
	if run = c.aheadFromDisk(run); len(run) == 0 {
		return
	}
	select {
	case c.asyncN <- struct{}{}:
	case <-ctx.Done():
		c.aborted.Add(1)
		return
	}
	defer func() { <-c.asyncN }()
	for part := range runs(run, asyncRun) { // what the disk held may have left gaps
		if err := c.readRun(ctx, part, false); err != nil {
			c.aborted.Add(1)
			return
		}
	}
}

// aheadFromDisk keeps, as read ahead, the pages of run that the disk tier
// holds, and returns the others: a reader started again reads ahead from
// its disk, not from storage. It reads the disk here, off the query's
// goroutine, as the read ahead would have read storage.
func (c *Cache) aheadFromDisk(run []Ref) []Ref {
	if c.disk == nil {
		return run
	}
	rest := run[:0:0]
	for _, ref := range run {
		if page, ok := c.disk.get(ref.Key, ref.PageSize); ok {
			c.keepAhead(ref.Key, page)
		} else {
			rest = append(rest, ref)
		}
	}
	return rest
}

// HotRequests is how many requests PrefetchHot would make for refs now:
// those of the pages not held in memory, joined as it joins them. A caller
// weighs a prefetch with it (the vfs package reads a small index whole
// once its lookups have cost as many requests as that); -1 if a ref is not
// one PrefetchHot would read.
func (c *Cache) HotRequests(refs []Ref) int {
	want, err := c.wanted(refs)
	if err != nil {
		return -1
	}
	n := 0
	for range runs(want, maxRun) {
		n++
	}
	return n
}

// Close stops the reads ahead under way and waits for them to end, and
// closes the disk tier. The cache still serves pages after Close, without
// reading ahead.
func (c *Cache) Close() {
	c.mu.Lock()
	c.stop() // under mu: no read ahead starts after this
	c.mu.Unlock()
	c.async.Wait()
	if c.disk != nil {
		c.disk.Close()
	}
}

// wanted returns the refs not held yet, once each, sorted by file and
// offset, after checking them.
func (c *Cache) wanted(refs []Ref) ([]Ref, error) {
	var want []Ref
	seen := make(map[Key]bool, len(refs))
	c.mu.Lock()
	for _, ref := range refs {
		if !seen[ref.Key] && !c.pages.contains(ref.Key) {
			seen[ref.Key] = true
			want = append(want, ref)
		}
	}
	c.mu.Unlock()
	for _, ref := range want {
		if err := checkRef(ref); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(want, func(a, b Ref) int {
		return cmp.Or(
			cmp.Compare(a.File.Level, b.File.Level), cmp.Compare(a.File.MinTXID, b.File.MinTXID),
			cmp.Compare(a.File.MaxTXID, b.File.MaxTXID), cmp.Compare(a.File.Checksum, b.File.Checksum),
			cmp.Compare(a.Offset, b.Offset))
	})
	return want, nil
}

// runs splits refs (sorted by file, then offset) into groups that one read
// of at most limit bytes covers.
func runs(refs []Ref, limit int64) func(yield func([]Ref) bool) {
	return func(yield func([]Ref) bool) {
		for len(refs) > 0 {
			n := 1
			for n < len(refs) {
				prev, next := refs[n-1], refs[n]
				end := prev.Offset + prev.Size
				if next.File != prev.File || next.Offset < end || next.Offset-end > maxGap || next.Offset+next.Size-refs[0].Offset > limit {
					break
				}
				n++
			}
			if !yield(refs[:n]) {
				return
			}
			refs = refs[n:]
		}
	}
}

// readRun reads the frames of run with one request and keeps their pages:
// on probation, or as hot pages also written to the disk tier.
func (c *Cache) readRun(ctx context.Context, run []Ref, hot bool) error {
	first, last := run[0], run[len(run)-1]
	start, end := first.Offset, last.Offset+last.Size
	b, err := c.readRange(ctx, first.File, start, end-start)
	if err != nil {
		return fmt.Errorf("read pages %d-%d from %s at offsets %d-%d: %w", first.Pgno, last.Pgno, first.File.name(), start, end, err)
	}
	for _, ref := range run {
		page, err := checkAndDecode(ref, b[ref.Offset-start:ref.Offset-start+ref.Size])
		if err != nil {
			return err
		}
		if hot {
			c.keep(ref.Key, page, true)
			if c.disk != nil {
				c.disk.put(ref.Key, page)
			}
		} else {
			c.keepAhead(ref.Key, page)
		}
	}
	return nil
}
