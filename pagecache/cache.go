package pagecache

import (
	"context"
	"errors"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// API CONTRACT between pagecache and vfs: the bodies are being written; the
// signatures and their documented behaviour are what vfs codes against.

var errUnimplemented = errors.New("pagecache: not implemented yet")

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
}

// Options tune a Cache.
type Options struct {
	MaxBytes int64 // budget for decoded pages; 64 MiB if 0
}

// Stats are counters since the cache was made.
type Stats struct {
	Hits, Misses     int64 // page lookups
	Requests, Bytes  int64 // storage reads made to fill misses
	Evictions        int64
	Pages, UsedBytes int64 // held now
}

// Cache holds the decoded pages of one replica, shared by all its
// connections. It is safe for concurrent use.
type Cache struct{}

// New returns a cache that fills misses from client.
func New(client storage.Client, opts Options) *Cache { return &Cache{} }

// Page returns the decoded page for ref, from memory or with one ranged read
// (concurrent callers for the same page share one read). The frame is
// checked: its page number must be ref's and it must decode to exactly
// PageSize bytes, else the error names the file and page. The returned slice
// is shared: callers must not modify it.
func (c *Cache) Page(ctx context.Context, ref Ref) ([]byte, error) { return nil, errUnimplemented }

// Stats returns the counters.
func (c *Cache) Stats() Stats { return Stats{} }
