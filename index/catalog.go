package index

import (
	"context"
	"fmt"
	"sync"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/ltxvfs/ltxvfs/storage"
)

// catalog holds the page indexes of the files fetched so far, so that a
// poll fetches only files it has not seen, and fetches them all at once.
type catalog struct {
	client storage.Client
	sem    chan struct{} // one slot per request in flight

	mu      sync.Mutex
	indexes map[fileKey]*fileIndex
	flights singleflight.Group // one fetch per file in flight
}

func newCatalog(client storage.Client, concurrency int) *catalog {
	return &catalog{client: client, sem: make(chan struct{}, concurrency), indexes: map[fileKey]*fileIndex{}}
}

// listLevels lists every level at once: one round trip however many levels
// hold files.
func (c *catalog) listLevels(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	var levels [storage.SnapshotLevel + 1][]*ltx.FileInfo
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(c.sem))
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
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var all []*ltx.FileInfo
	for _, infos := range levels {
		all = append(all, infos...)
	}
	return all, nil
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
			v, err, _ := c.flights.Do(key.String(), func() (any, error) {
				fx, err := fetchFileIndex(gctx, c.client, c.sem, info)
				if err != nil {
					return nil, err
				}
				c.mu.Lock()
				if known, ok := c.indexes[key]; ok {
					fx = known // fetched meanwhile by another build: keep one *File
				} else {
					c.indexes[key] = fx
				}
				c.mu.Unlock()
				return fx, nil
			})
			if err != nil {
				return err
			}
			out[i] = v.(*fileIndex)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return out, len(missing), nil
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
