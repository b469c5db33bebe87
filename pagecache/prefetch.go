package pagecache

import (
	"cmp"
	"context"
	"fmt"
	"slices"

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
)

// Prefetch reads the pages of refs that are not held yet and keeps them:
// frames of one file that lie close together are read with one ranged
// request, and the requests go out in parallel. It returns the first error
// (naming the file and page); the pages read before it are kept.
func (c *Cache) Prefetch(ctx context.Context, refs []Ref) error {
	var want []Ref
	seen := make(map[Key]bool, len(refs))
	c.mu.Lock()
	for _, ref := range refs {
		if !seen[ref.Key] && !c.lru.Contains(ref.Key) {
			seen[ref.Key] = true
			want = append(want, ref)
		}
	}
	c.mu.Unlock()
	for _, ref := range want {
		if err := checkRef(ref); err != nil {
			return err
		}
	}
	slices.SortFunc(want, func(a, b Ref) int {
		return cmp.Or(
			cmp.Compare(a.File.Level, b.File.Level), cmp.Compare(a.File.MinTXID, b.File.MinTXID),
			cmp.Compare(a.File.MaxTXID, b.File.MaxTXID), cmp.Compare(a.File.Checksum, b.File.Checksum),
			cmp.Compare(a.Offset, b.Offset))
	})

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prefetchConcurrency)
	for run := range runs(want) {
		g.Go(func() error { return c.readRun(gctx, run) })
	}
	return g.Wait()
}

// runs splits refs (sorted by file, then offset) into groups that one read
// covers.
func runs(refs []Ref) func(yield func([]Ref) bool) {
	return func(yield func([]Ref) bool) {
		for len(refs) > 0 {
			n := 1
			for n < len(refs) {
				prev, next := refs[n-1], refs[n]
				end := prev.Offset + prev.Size
				if next.File != prev.File || next.Offset < end || next.Offset-end > maxGap || next.Offset+next.Size-refs[0].Offset > maxRun {
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

// readRun reads the frames of run with one request and keeps their pages.
func (c *Cache) readRun(ctx context.Context, run []Ref) error {
	first, last := run[0], run[len(run)-1]
	start, end := first.Offset, last.Offset+last.Size
	b, err := c.readRange(ctx, first.File, start, end-start)
	if err != nil {
		return fmt.Errorf("read pages %d-%d from %s at offsets %d-%d: %w", first.Pgno, last.Pgno, first.File.name(), start, end, err)
	}
	for _, ref := range run {
		page, err := decodeFrame(ref, b[ref.Offset-start:ref.Offset-start+ref.Size])
		if err != nil {
			return err
		}
		c.add(ref.Key, page)
	}
	return nil
}
