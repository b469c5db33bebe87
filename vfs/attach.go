package vfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ltxvfs/ltxvfs/storage"
)

// Options bind a database name to a replica in code (Attach).
type Options struct {
	// Client reads the replica. Give Client or URL, not both.
	Client storage.Client
	// URL is a replica URL, opened with storage.Open.
	URL string

	// CacheBytes is the budget of the page cache shared by every connection
	// to the replica; DefaultCacheBytes if 0.
	CacheBytes int64
	// Poll is how often the levels are listed while a connection follows
	// the newest TXID; DefaultPoll if 0.
	Poll time.Duration
	// Logger receives the poller's warnings; slog.Default() if nil.
	Logger *slog.Logger
	// Registerer, when set, receives the replica's metrics (labelled
	// replica=<name>). Nothing is registered anywhere without it.
	Registerer prometheus.Registerer

	// DiskCacheDir, when set, keeps the pages read from storage in files
	// under this directory as well, up to DiskCacheBytes
	// (pagecache.DefaultDiskBytes, 1 GiB, if 0), so that a process started
	// again finds them there instead of in storage. Every page file is
	// checked (its key, length and CRC) when read: a damaged or torn one is
	// dropped, never served. Use one directory per replica.
	DiskCacheDir   string
	DiskCacheBytes int64
}

// coldTunings holds, by name, the cold-path features that the package's
// benchmarks and tests switch off for the next Attach of that name
// (cold.go; attachTuned in export_test.go sets it): outside them it is
// empty, and Options carries only what users set.
var coldTunings sync.Map // name → coldTuning

// Attach binds name to a replica, so that "file:name?vfs=ltx" opens it
// without a replica= parameter. The client, cache and metrics live until
// Detach (and the last connection using them closes). A replica= parameter
// in a DSN always wins over an attached name.
func Attach(name string, opts Options) error {
	if name == "" {
		return errors.New("ltx vfs: attach: empty name")
	}
	client := opts.Client
	switch {
	case client != nil && opts.URL != "":
		return fmt.Errorf("ltx vfs: attach %q: give Options.Client or Options.URL, not both", name)
	case client == nil && opts.URL == "":
		return fmt.Errorf("ltx vfs: attach %q: Options.Client or Options.URL is required", name)
	case client == nil:
		var err error
		if client, err = storage.Open(context.Background(), opts.URL); err != nil {
			return fmt.Errorf("ltx vfs: attach %q: %w", name, err)
		}
	}
	if opts.CacheBytes < 0 || opts.Poll < 0 || opts.DiskCacheBytes < 0 {
		return fmt.Errorf("ltx vfs: attach %q: negative CacheBytes, Poll or DiskCacheBytes", name)
	}

	registryMu.Lock()
	defer registryMu.Unlock()
	key := attachKey(name)
	if replicas[key] != nil {
		return fmt.Errorf("ltx vfs: attach %q: name already attached (Detach it first)", name)
	}
	tune, _ := coldTunings.Load(name)
	cold, _ := tune.(coldTuning)
	cfg := replicaConfig{key: key, name: name, client: client, cacheBytes: opts.CacheBytes, poll: opts.Poll, logger: opts.Logger, cold: cold.withDisk(opts.DiskCacheDir, opts.DiskCacheBytes)}
	if opts.Registerer != nil {
		cfg.metrics = func(r *replica) *metrics { return newMetrics(opts.Registerer, name, r) }
	}
	r, err := newReplica(cfg)
	if err != nil {
		return fmt.Errorf("ltx vfs: attach %q: %w", name, err)
	}
	r.refs, r.attached = 1, true
	replicas[key] = r
	return nil
}

// Detach unbinds a name bound by Attach: new opens of the name fail, while
// connections already open keep working until they close. Detaching a name
// that is not attached does nothing.
func Detach(name string) {
	registryMu.Lock()
	r := replicas[attachKey(name)]
	if r != nil {
		delete(replicas, r.key)
	}
	registryMu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.attached = false
	r.mu.Unlock()
	// The metrics go now, so the name can be attached again with the same
	// Registerer while connections of this replica are still open.
	if r.m != nil {
		r.m.unregister()
	}
	r.release()
}
