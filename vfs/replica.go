package vfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/pagecache"
	"github.com/ltxvfs/ltxvfs/storage"
)

// replica is the state shared by every connection of this process to one
// replica: one client, one index, one page cache and, while at least one
// connection follows the newest TXID, one poller.
type replica struct {
	key    string // registry key: "name:<attached>" or "url:<normalized URL>"
	name   string // for logs: the attached name or the URL without credentials
	client storage.Client
	idx    *index.Index
	cache  *pagecache.Cache
	log    *slog.Logger
	poll   time.Duration
	// listGap is how old the last listing of the levels may get before a
	// poll lists them again (see listEvery) if not 0; benchmarks set it
	// tiny to compare with listing at each poll.
	listGap time.Duration
	m       *metrics  // nil without a Registerer
	cold    coldState // readahead and frames (cold.go)
	walk    walker    // B-tree interior pages found and fetched ahead (interior.go)

	updating chan struct{} // held by the one synchronous Update at a time (opens); a wait for it honours its context
	lastPoll atomic.Int64  // unix nanoseconds of the last successful Update
	polls    pollGate      // the polls of connections waiting for a token (wait.go)

	// replanned is a version rebuilt by Replan at the latest TXID, after a
	// file of the index's latest version vanished: following connections
	// use it instead of the latest until the latest moves on.
	replanned atomic.Pointer[index.Version]

	mu        sync.Mutex
	refs      int  // open files, plus one while attached
	attached  bool // bound by Attach and not yet detached
	followers int
	stopPoll  context.CancelFunc
	pollDone  chan struct{}
	files     map[*file]struct{} // open files, for oldestPinned
}

// replicaConfig is what makes a replica: from Attach's Options or from the
// first DSN that names its URL.
type replicaConfig struct {
	key, name  string
	client     storage.Client
	cacheBytes int64
	poll       time.Duration
	logger     *slog.Logger
	metrics    func(*replica) *metrics
	cold       coldTuning // cold-path switches, for benchmarks (cold.go)
}

var (
	registryMu sync.Mutex
	replicas   = map[string]*replica{} // by key
)

func newReplica(cfg replicaConfig) (*replica, error) {
	r := &replica{
		key:      cfg.key,
		name:     cfg.name,
		client:   cfg.client,
		log:      cfg.logger,
		poll:     cfg.poll,
		files:    map[*file]struct{}{},
		updating: make(chan struct{}, 1),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.log = r.log.With("replica", r.name)
	if r.poll <= 0 {
		r.poll = DefaultPoll
	}
	if cfg.cacheBytes <= 0 {
		cfg.cacheBytes = DefaultCacheBytes
	}
	if cfg.metrics != nil {
		r.m = cfg.metrics(r)
		r.client = &meteredClient{Client: r.client, m: r.m}
	}
	// Outermost: a request a statement's budget refuses reaches neither
	// storage nor the metrics.
	r.client = &statClient{Client: r.client}
	disk, err := r.setupCold(cfg)
	if err != nil {
		return nil, err
	}
	r.cache = pagecache.New(r.client, pagecache.Options{MaxBytes: cfg.cacheBytes, Disk: disk})
	iopts := index.Options{Logger: r.log, Moved: r.moved, Held: r.held}
	if disk != nil {
		iopts.Objects = disk // hints survive a restart there too
	}
	if !cfg.cold.noFrames {
		iopts.Frames, iopts.HintFrameBytes = r.putFrames, r.hintFrameBytes()
	}
	r.idx = index.New(r.client, iopts)
	if r.m != nil {
		if err := r.m.register(); err != nil {
			return nil, fmt.Errorf("register metrics of replica %s: %w", r.name, err)
		}
	}
	return r, nil
}

// acquireURL returns the shared replica for a URL, making it (with the
// settings of this first opener) if no connection has it open.
func acquireURL(ctx context.Context, raw string, p params) (*replica, error) {
	u, err := storage.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	key := "url:" + normalizedURL(u)

	registryMu.Lock()
	defer registryMu.Unlock()
	if r := replicas[key]; r != nil {
		r.mu.Lock()
		r.refs++
		r.mu.Unlock()
		return r, nil
	}
	client, err := storage.Open(ctx, raw)
	if err != nil {
		return nil, err
	}
	r, err := newReplica(replicaConfig{key: key, name: u.String(), client: client, cacheBytes: p.cacheMax, poll: p.poll, cold: coldTuning{}.withDisk(p.diskDir, p.diskBytes)})
	if err != nil {
		return nil, err
	}
	r.refs = 1
	replicas[key] = r
	return r, nil
}

// acquireName returns the replica bound to name by Attach, or nil.
func acquireName(name string) *replica {
	registryMu.Lock()
	defer registryMu.Unlock()
	r := replicas[attachKey(name)]
	if r != nil {
		r.mu.Lock()
		r.refs++
		r.mu.Unlock()
	}
	return r
}

// release drops one reference; the last one unregisters the metrics and
// forgets the replica (its poller has stopped with its last follower).
func (r *replica) release() {
	registryMu.Lock()
	defer registryMu.Unlock()
	r.mu.Lock()
	r.refs--
	last := r.refs == 0
	r.mu.Unlock()
	if !last {
		return
	}
	if replicas[r.key] == r {
		delete(replicas, r.key)
	}
	if r.m != nil {
		r.m.unregister()
	}
	r.closeCold()
}

func attachKey(name string) string { return "name:" + name }

// normalizedURL identifies a replica whatever the spelling of its URL
// (a bare path or file:///, a trailing slash, parameter order).
func normalizedURL(u *storage.URL) string {
	switch u.Scheme {
	case "file":
		return "file://" + u.Path
	case "http", "https":
		// Its parameters too: two URLs that send other headers (tokens)
		// or trust other CAs must not share one client.
		return fmt.Sprintf("%s?%+v", u.BaseURL, u.HTTP)
	}
	return fmt.Sprintf("%s://%s/%s?endpoint=%s&region=%s&force-path-style=%t", u.Scheme, u.Bucket, u.Prefix, u.Endpoint, u.Region, u.ForcePathStyle)
}

// latest is the version a following connection sees now.
func (r *replica) latest() *index.Version {
	v := r.idx.Latest()
	if fixed := r.replanned.Load(); fixed != nil && v != nil {
		if fixed.TXID() == v.TXID() {
			return fixed
		}
		r.replanned.CompareAndSwap(fixed, nil) // the latest moved on: let it go
	}
	return v
}

// refreshing reports whether a synchronous Update is under way.
func (r *replica) refreshing() bool { return len(r.updating) > 0 }

// refresh makes sure a following connection that opens now starts from a
// version no older than one poll interval: the first opener builds the
// index, and a replica whose poller was stopped (no followers) catches up.
func (r *replica) refresh(ctx context.Context) (*index.Version, error) {
	select {
	case r.updating <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.updating }()
	if v := r.latest(); v != nil && time.Since(time.Unix(0, r.lastPoll.Load())) < r.poll {
		return v, nil
	}
	v, err := r.idx.Update(ctx)
	if err != nil {
		return nil, err
	}
	r.lastPoll.Store(time.Now().UnixNano())
	return v, nil
}

// follow counts a connection that follows the newest TXID, starting the
// poller for the first one.
func (r *replica) follow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.followers++
	if r.followers == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		r.stopPoll, r.pollDone = cancel, done
		go r.pollLoop(ctx, done)
	}
}

// unfollow undoes follow, stopping the poller (and waiting for it) after
// the last follower.
func (r *replica) unfollow() {
	r.mu.Lock()
	r.followers--
	var stop context.CancelFunc
	var done chan struct{}
	if r.followers == 0 {
		stop, done = r.stopPoll, r.pollDone
		r.stopPoll, r.pollDone = nil, nil
	}
	r.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// addFile and removeFile track the open files, whose transactions' TXIDs
// the metrics report (see oldestPinned).
func (r *replica) addFile(f *file) {
	r.mu.Lock()
	r.files[f] = struct{}{}
	r.mu.Unlock()
}

func (r *replica) removeFile(f *file) {
	r.mu.Lock()
	delete(r.files, f)
	r.mu.Unlock()
}

// oldestPinned is the oldest TXID an open read transaction holds, 0 if none.
// It is asked for at a scrape: a transaction only stores its TXID (an
// atomic store, no lock) and the walk over the files happens here.
func (r *replica) oldestPinned() ltx.TXID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest ltx.TXID
	for f := range r.files {
		if txid := ltx.TXID(f.txTXID.Load()); txid != 0 && (oldest == 0 || txid < oldest) {
			oldest = txid
		}
	}
	return oldest
}

// replan rebuilds v after one of its files vanished, at the same TXID, and
// remembers the result for following connections when v is the latest.
func (r *replica) replan(ctx context.Context, v *index.Version) (*index.Version, error) {
	nv, err := r.idx.Replan(ctx, v)
	if err != nil {
		return nil, err
	}
	if nv.TXID() != v.TXID() {
		return nil, fmt.Errorf("replan of TXID %s gave TXID %s", v.TXID(), nv.TXID())
	}
	if latest := r.idx.Latest(); latest != nil && latest.TXID() == nv.TXID() {
		r.replanned.Store(nv)
	}
	r.log.Info("ltx vfs: a file vanished from storage; rebuilt the index from a fresh listing", "txid", v.TXID())
	return nv, nil
}

// held reports whether the cache would serve a page of f without storage.
func (r *replica) held(f *index.File, pgno uint32) bool {
	return r.cache.Held(pagecache.Key{File: fileKey(f), Pgno: pgno})
}

// moved keeps in the cache, under their new file, the pages that a new
// version reads from another file than before because the old one vanished
// (retention): the same bytes, so a follower's cache stays warm.
func (r *replica) moved(moves []index.Move) {
	for _, m := range moves {
		r.cache.Alias(pagecache.Key{File: fileKey(m.From.File), Pgno: m.Pgno}, pagecache.Key{File: fileKey(m.To.File), Pgno: m.Pgno})
	}
}

// errNoReplica: a database opened without replica= and not attached.
var errNoReplica = errors.New("no replica")
