package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/ltxvfs/ltxvfs/storage"
)

// catalog holds the page indexes of the files fetched so far, so that a
// poll fetches only files it has not seen, and fetches them all at once.
type catalog struct {
	client  storage.Client
	sem     chan struct{} // one slot per request in flight
	log     *slog.Logger
	sink    FrameSink // nil: frames read with page indexes are dropped
	maxHint int64     // largest hint read; 0: hints are not read

	mu      sync.Mutex
	indexes map[fileKey]*fileIndex
	flights singleflight.Group // one fetch per file in flight

	// The hint level is listed with the first listing; its files are
	// those of the files listed then (up to hintHorizon). A file that
	// ends later has its hint read by name, if the replica had hints.
	hintsListed bool
	hints       map[ltx.TXID]*ltx.FileInfo // by MaxTXID
	hintHorizon ltx.TXID
}

func newCatalog(client storage.Client, concurrency int) *catalog {
	return &catalog{client: client, sem: make(chan struct{}, concurrency), log: slog.Default(), indexes: map[fileKey]*fileIndex{}}
}

// listLevels lists every level at once: one round trip however many levels
// hold files. The first listing lists the hint level too, in the same
// round.
func (c *catalog) listLevels(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	var levels [storage.SnapshotLevel + 1][]*ltx.FileInfo
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(c.sem))
	c.mu.Lock()
	listHints := c.maxHint > 0 && c.sink != nil && !c.hintsListed
	c.mu.Unlock()
	var hints []*ltx.FileInfo
	var hintsErr error
	done := make(chan struct{})
	if listHints {
		// Outside the group: a hint is optional, and its listing failing
		// must fail nothing.
		go func() {
			defer close(done)
			// ctx, not gctx: gctx ends when the group's listings are done.
			hints, hintsErr = storage.ListLevel(ctx, c.client, storage.HintLevel, 0, false)
		}()
	} else {
		close(done)
	}
	for level := range levels {
		g.Go(func() error {
			infos, err := storage.ListLevel(gctx, c.client, level, 0, useMetadata)
			if err != nil {
				return fmt.Errorf("list level %d of %s: %w", level, c.client, err)
			}
			levels[level] = infos
			return nil
		})
	}
	err := g.Wait()
	<-done
	if err != nil {
		return nil, err
	}
	var all []*ltx.FileInfo
	for _, infos := range levels {
		all = append(all, infos...)
	}
	if listHints {
		c.mu.Lock()
		c.hintsListed = true
		if hintsErr != nil {
			c.log.Debug("list hints: reading without", "replica", c.client.String(), "err", hintsErr)
		} else {
			c.hints = make(map[ltx.TXID]*ltx.FileInfo, len(hints))
			for _, h := range hints {
				if h.MinTXID == h.MaxTXID {
					c.hints[h.MaxTXID] = h
				}
			}
			for _, info := range all {
				c.hintHorizon = max(c.hintHorizon, info.MaxTXID)
			}
		}
		c.mu.Unlock()
	}
	return all, nil
}

// hintFor says how to read the hint of a file.
func (c *catalog) hintFor(info *ltx.FileInfo) hintRequest {
	if c.maxHint <= 0 || c.sink == nil || info.Level < 1 || info.MaxTXID < 2 {
		return hintRequest{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if info.MaxTXID <= c.hintHorizon {
		return hintRequest{listed: c.hints[info.MaxTXID], max: c.maxHint}
	}
	return hintRequest{probe: len(c.hints) > 0, max: c.maxHint}
}

// load returns the page indexes of files, in the same order, fetching
// those not known yet in parallel. It reports how many it fetched.
func (c *catalog) load(ctx context.Context, files []*ltx.FileInfo) ([]*fileIndex, int, error) {
	out := make([]*fileIndex, len(files))
	var missing []int
	c.mu.Lock()
	for i, info := range files {
		if fx, ok := c.indexes[keyOf(info)]; ok {
			out[i] = fx
		} else {
			missing = append(missing, i)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, 0, nil
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, i := range missing {
		info := files[i]
		g.Go(func() error {
			key := keyOf(info)
			for attempt := 0; ; attempt++ {
				led := false // set only if this caller's function runs
				v, err, _ := c.flights.Do(key.String(), func() (any, error) {
					led = true
					fx, err := fetchFileIndex(gctx, c.client, c.sem, info, c.hintFor(info))
					if err != nil {
						return nil, err
					}
					return c.add(fx), nil
				})
				if err != nil && !led && gctx.Err() == nil && attempt < 3 &&
					(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
					// The read ran under the context of the build that
					// led it, which gave up; this one did not.
					continue
				}
				if err != nil {
					return err
				}
				out[i] = v.(*fileIndex)
				return nil
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return out, len(missing), nil
}

// add keeps a page index just read (by load or Probe), returning the one
// kept when the file is known already: one *File per file.
func (c *catalog) add(fx *fileIndex) *fileIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := keyOf(&fx.file.Info)
	if known, ok := c.indexes[key]; ok {
		return known
	}
	c.indexes[key] = fx
	return fx
}

// retain forgets the page indexes of files that keep does not hold.
func (c *catalog) retain(keep map[fileKey]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.indexes {
		if !keep[k] {
			delete(c.indexes, k)
		}
	}
}

// forget drops the page indexes of files, to fetch them again.
func (c *catalog) forget(files []*ltx.FileInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, info := range files {
		delete(c.indexes, keyOf(info))
	}
}

// size is the number of page indexes held.
func (c *catalog) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.indexes)
}
