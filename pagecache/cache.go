package pagecache

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"
	"golang.org/x/sync/singleflight"

	"github.com/ltxvfs/ltxvfs/storage"
)

// FileKey identifies the content of one LTX file: its name and the file
// checksum from its trailer, so that a file rewritten under the same name
// can never be served from stale entries.
type FileKey struct {
	Level            int
	MinTXID, MaxTXID ltx.TXID
	Checksum         ltx.Checksum
}

// Key identifies one immutable page: a page number in a file.
type Key struct {
	File FileKey
	Pgno uint32
}

// Ref is a page to read and where its frame (page header + LZ4 block) is.
type Ref struct {
	Key
	Offset, Size int64
	PageSize     uint32

	// Check, if set, checks the frame's bytes as read before they are
	// decoded (against a checksum its writer published): a frame it
	// refuses is an error, and the page is never kept.
	Check FrameChecker
}

// FrameChecker checks the frame of a page of one file before it is
// decoded (see Ref.Check).
type FrameChecker interface {
	CheckFrame(pgno uint32, frame []byte) error
}

// Options tune a Cache.
type Options struct {
	MaxBytes int64 // budget for decoded pages; DefaultMaxBytes if 0

	// Disk, when set, is a second tier: a miss looks there before storage,
	// and a page read from storage for a miss is written there too (pages
	// read ahead for scans are not). The cache closes it.
	Disk *Disk
}

// Stats are counters since the cache was made.
type Stats struct {
	Hits, Misses     int64 // page lookups
	Requests, Bytes  int64 // storage reads made to fill misses, prefetches and reads ahead
	Evictions        int64
	Pages, UsedBytes int64 // held now
	ReadaheadErrors  int64 // reads ahead that failed or were cancelled (the pages are read when asked for)
	ReadaheadStuck   int64 // pages read by the caller itself because their read ahead was still under way after aheadPatience
}

// entryOverhead is what the cache spends on an entry besides the page
// (LRU element, map slot, key), charged to the budget so that the budget
// bounds memory, small pages included.
const entryOverhead = 192

// Cache holds the decoded pages of one replica, shared by all its
// connections. It is safe for concurrent use.
//
// UsedBytes counts each page's size plus a fixed entryOverhead, and never
// exceeds MaxBytes; a page larger than the budget is returned but not kept.
type Cache struct {
	client   storage.Client
	maxBytes int64
	disk     *Disk // nil without a disk tier

	mu       sync.Mutex
	pages    *segments          // under mu
	inflight map[Key]*aheadRead // pages being read ahead, under mu

	flights singleflight.Group // one fetch per page in flight

	// Reads ahead (PrefetchAsync) run under bg until Close.
	bg      context.Context
	stop    context.CancelFunc
	async   sync.WaitGroup
	asyncN  chan struct{} // one slot per read ahead in flight
	aborted atomic.Int64  // reads ahead that failed
	stuck   atomic.Int64  // pages whose read ahead Page stopped waiting for

	patience time.Duration // aheadPatience; shorter in tests

	hits, misses    atomic.Int64
	requests, bytes atomic.Int64
}

// DefaultMaxBytes is the budget of a cache whose Options give none.
const DefaultMaxBytes = 64 << 20

// New returns a cache that fills misses from client.
func New(client storage.Client, opts Options) *Cache {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	c := &Cache{
		client:   client,
		maxBytes: opts.MaxBytes,
		disk:     opts.Disk,
		pages:    newSegments(opts.MaxBytes),
		inflight: map[Key]*aheadRead{},
		asyncN:   make(chan struct{}, asyncConcurrency),
		patience: aheadPatience,
	}
	c.bg, c.stop = context.WithCancel(context.Background())
	return c
}

func cost(page []byte) int64 { return int64(len(page)) + entryOverhead }

// Served says how Get served a page: from where, and for a page it
// waited for storage for, when the read it waited for started, so that a
// caller can tell waits one after another from waits for reads made in
// parallel.
type Served struct {
	From  Source
	Since time.Time // FromAhead, FromStorage: when that read started
}

// Source is where a page came from.
type Source uint8

const (
	// FromMemory: the page was held; nothing was waited for.
	FromMemory Source = iota
	// FromAhead: a read ahead under way brought the page, after a wait
	// for storage (a hit in Stats); Since is when the read ahead started.
	FromAhead
	// FromDisk: the disk tier held the page (a miss in Stats).
	FromDisk
	// FromStorage: the page was read from storage, by this caller or by
	// another one it waited for (a miss in Stats); Since is when that
	// read started.
	FromStorage
)

// Page returns the decoded page for ref, from memory or with one ranged read
// (concurrent callers for the same page share one read). The frame is
// checked: its page number must be ref's and it must decode to exactly
// PageSize bytes, else the error names the file and page. The returned slice
// is shared: callers must not modify it.
//
// A caller whose ctx ends returns ctx.Err() at once; the read it shares
// goes on for the others. Errors are not cached: the next call reads again.
// A file that no longer exists gives an error matching os.ErrNotExist.
//
// A page being read ahead (PrefetchAsync) is waited for rather than read
// again, until aheadPatience after that read started: a read ahead may be
// stuck on storage for as long as the query that started it lasts (maybe
// another connection's), so past that the page is read under ctx like any
// miss.
func (c *Cache) Page(ctx context.Context, ref Ref) ([]byte, error) {
	page, _, err := c.Get(ctx, ref)
	return page, err
}

// Get is Page, and says where the page came from, so that a caller can
// count what its own reads cost: whether it waited for storage, and
// whether the disk tier served it.
func (c *Cache) Get(ctx context.Context, ref Ref) ([]byte, Served, error) {
	c.mu.Lock()
	page, ok, first := c.pages.get(ref.Key)
	var ahead *aheadRead
	if !ok {
		ahead = c.inflight[ref.Key] // a hit, the warm path, hashes the key once
	}
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		c.readOnce(ref.Key, page, first)
		return page, Served{From: FromMemory}, nil
	}
	if ahead != nil {
		page, src, err := c.awaitAhead(ctx, ref.Key, ahead)
		if page != nil || err != nil {
			return page, src, err
		}
	}
	c.misses.Add(1)
	return c.fetchShared(ctx, ref)
}

// awaitAhead waits for the read ahead bringing page k, until it ends, ctx
// ends, or its patience runs out. It returns the page if the read ahead
// brought it (FromMemory if it had landed already, FromAhead after a
// wait), nil and no error if the caller must read it itself.
func (c *Cache) awaitAhead(ctx context.Context, k Key, ahead *aheadRead) ([]byte, Served, error) {
	select {
	case <-ahead.done:
		return c.landed(k, Served{From: FromMemory})
	default:
	}
	left := time.Until(ahead.since.Add(c.patience))
	if left > 0 {
		timer := time.NewTimer(left)
		defer timer.Stop()
		select {
		case <-ahead.done:
			return c.landed(k, Served{From: FromAhead, Since: ahead.since})
		case <-ctx.Done():
			c.misses.Add(1)
			return nil, Served{}, ctx.Err()
		case <-timer.C:
		}
	}
	c.stuck.Add(1)
	return nil, Served{}, nil
}

// landed returns page k after the read ahead that claimed it ended, if it
// brought the page.
func (c *Cache) landed(k Key, how Served) ([]byte, Served, error) {
	if page, ok := c.get(k); ok {
		c.hits.Add(1)
		return page, how, nil
	}
	return nil, Served{}, nil // it failed or was cancelled
}

// flight is what one shared read gives every caller waiting for it.
type flight struct {
	page []byte
	how  Served
}

// fetchShared reads a page once for every caller waiting for it. The read
// runs under the context of the caller that started it (so a query's
// deadline bounds it); if that caller gives up, the others start again.
func (c *Cache) fetchShared(ctx context.Context, ref Ref) ([]byte, Served, error) {
	key := flightKey(ref.Key)
	for attempt := 0; ; attempt++ {
		led := false // set only if this caller's function runs
		ch := c.flights.DoChan(key, func() (any, error) {
			led = true
			// A read that finished just before this one began has filled
			// the cache already.
			if page, ok := c.get(ref.Key); ok {
				return flight{page, Served{From: FromMemory}}, nil
			}
			if c.disk != nil {
				if page, ok := c.disk.get(ref.Key, ref.PageSize); ok {
					c.add(ref.Key, page)
					return flight{page, Served{From: FromDisk}}, nil
				}
			}
			since := time.Now()
			page, err := c.fetch(ctx, ref)
			if err != nil {
				return nil, err
			}
			c.add(ref.Key, page)
			if c.disk != nil {
				c.disk.put(ref.Key, page)
			}
			return flight{page, Served{From: FromStorage, Since: since}}, nil
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				if !led && ctx.Err() == nil && attempt < 3 && isContextErr(res.Err) {
					continue // the caller that led the read gave up, not this one
				}
				return nil, Served{}, res.Err
			}
			f := res.Val.(flight)
			return f.page, f.how, nil
		case <-ctx.Done():
			return nil, Served{}, ctx.Err()
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// flightKey names a page for singleflight.
func flightKey(k Key) string {
	var b [8*4 + 4]byte
	binary.BigEndian.PutUint64(b[0:], uint64(k.File.Level))
	binary.BigEndian.PutUint64(b[8:], uint64(k.File.MinTXID))
	binary.BigEndian.PutUint64(b[16:], uint64(k.File.MaxTXID))
	binary.BigEndian.PutUint64(b[24:], uint64(k.File.Checksum))
	binary.BigEndian.PutUint32(b[32:], k.Pgno)
	return string(b[:])
}

func (c *Cache) get(k Key) ([]byte, bool) {
	c.mu.Lock()
	page, ok, first := c.pages.get(k)
	c.mu.Unlock()
	c.readOnce(k, page, first)
	return page, ok
}

// readOnce writes to the disk tier a page read ahead, at its first read by
// a query: the disk keeps what queries read, so that a reader started
// again finds it there rather than reading it, or reading it ahead, from
// storage. A page read ahead and never read is not written.
func (c *Cache) readOnce(k Key, page []byte, first bool) {
	if first && c.disk != nil {
		c.disk.put(k, page)
	}
}

// add keeps a page read for the first time (on probation, see segments),
// evicting until the budget holds. A page larger than the whole budget is
// not kept.
func (c *Cache) add(k Key, page []byte) { c.keep(k, page, false) }

func (c *Cache) keep(k Key, page []byte, protected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pages.add(k, page, protected)
}

// keepAhead keeps a page read ahead of any query (see segments.addAhead).
func (c *Cache) keepAhead(k Key, page []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pages.addAhead(k, page)
}

// Alias holds the page held under from under to as well, without reading
// storage: to names another file that holds the same bytes (the index
// moved the page there because from's file vanished from storage). It
// reports whether from was held.
func (c *Cache) Alias(from, to Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	page, ok := c.pages.peek(from)
	if ok {
		c.pages.add(to, page, c.pages.protected.Contains(from))
	}
	return ok
}

// Peek returns a page if it is held, without changing its recency: for a
// caller that looks inside pages it had brought (the vfs package's B-tree
// walk), not for reads on behalf of queries. The slice is shared: callers
// must not modify it.
func (c *Cache) Peek(k Key) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pages.peek(k)
}

// Contains reports whether a page is held, without reading it or changing
// its recency.
func (c *Cache) Contains(k Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pages.contains(k)
}

// Held reports whether a page would be served without a read of storage:
// it is held in memory, or a file of the disk tier holds it (not checked
// here; Page checks it when it reads it).
func (c *Cache) Held(k Key) bool {
	if c.Contains(k) {
		return true
	}
	return c.disk != nil && c.disk.has(k)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	pages, used, evictions := int64(c.pages.len()), c.pages.used, c.pages.evictions
	c.mu.Unlock()
	return Stats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Requests:  c.requests.Load(),
		Bytes:     c.bytes.Load(),
		Evictions: evictions,
		Pages:     pages,
		UsedBytes: used,

		ReadaheadErrors: c.aborted.Load(),
		ReadaheadStuck:  c.stuck.Load(),
	}
}
