package index

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// catalog holds the page indexes of the files fetched so far, so that a
// poll fetches only files it has not seen, and fetches them all at once.
type catalog struct {
	client  storage.Client
	sem     chan struct{} // one slot per request in flight
	log     *slog.Logger
	sink    FrameSink   // nil: frames read with page indexes are dropped
	maxHint int64       // largest hint whose interior frames go to the sink
	objects ObjectCache // nil: none
	held    func(f *File, pgno uint32) bool

	mu      sync.Mutex
	indexes map[fileKey]*fileIndex
	flights singleflight.Group // one fetch per file in flight

	// The hints of the last listing, by the file they name, and whether
	// the replica had any (then a file listed without one may have had
	// it written since: see hintRequest.byName).
	hints    map[hintKey][]string
	hasHints bool
}

func newCatalog(client storage.Client, opts Options) *catalog {
	return &catalog{
		client:  client,
		sem:     make(chan struct{}, opts.Concurrency),
		log:     opts.Logger,
		sink:    opts.Frames,
		maxHint: opts.HintFrameBytes,
		objects: opts.Objects,
		held:    opts.Held,
		indexes: map[fileKey]*fileIndex{},
	}
}

// listLevels lists every level, with one request where the storage can
// (storage.CanListAll: one per thousand files), else one per level, all
// at once; and the hints (see manifest.Hint) in the same round: one round
// trip for a replica of up to a thousand files.
func (c *catalog) listLevels(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(c.sem))
	var hints []storage.ObjectInfo
	var hintsErr error
	g.Go(func() error {
		// In the group, so that it counts against the bound on requests
		// in flight; its failing fails nothing (a hint is optional).
		hints, hintsErr = c.client.ListObjects(gctx, manifest.HintDir)
		return nil
	})
	var all []*ltx.FileInfo
	g.Go(func() (err error) {
		if storage.CanListAll(c.client) {
			all, err = storage.ListAll(gctx, c.client, useMetadata)
		} else {
			// Within the bound, beside the hints' listing.
			all, err = storage.ListEachLevel(gctx, c.client, useMetadata, max(cap(c.sem)-1, 1))
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if hintsErr != nil {
		c.log.Debug("list hints: reading without", "replica", c.client.String(), "err", hintsErr)
		return all, nil
	}
	byFile := map[hintKey][]string{}
	for _, h := range hints {
		if src, err := manifest.ParseHintName(h.Name); err == nil {
			k := hintKey{src.Level, src.MinTXID, src.MaxTXID}
			byFile[k] = append(byFile[k], h.Name)
		}
	}
	c.mu.Lock()
	c.hints, c.hasHints = byFile, c.hasHints || len(byFile) > 0
	c.mu.Unlock()
	return all, nil
}

// hintFor says where to look for the hint of a file: files read whole
// need none.
func (c *catalog) hintFor(info *ltx.FileInfo) hintRequest {
	if info.Size <= manifest.WholeFileMax {
		return hintRequest{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	listed := c.hints[hintKey{info.Level, info.MinTXID, info.MaxTXID}]
	return hintRequest{listed: listed, byName: len(listed) == 0 && c.hasHints, cache: c.objects}
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
