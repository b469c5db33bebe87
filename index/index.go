package index

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// API CONTRACT between index and vfs: the bodies are being written; the
// signatures and their documented behaviour are what vfs codes against.

var errUnimplemented = errors.New("index: not implemented yet")

// File is one LTX file that pages are read from: what the listing said of
// it, and its header and trailer as read from storage.
type File struct {
	Info    ltx.FileInfo // level, TXID range, size, CreatedAt (from listing)
	Header  ltx.Header   // page size, commit, timestamp (from the file)
	Trailer ltx.Trailer  // FileChecksum identifies the file's content
}

// Name is "L<level>/<minTXID>-<maxTXID>.ltx", for errors and logs.
func (f *File) Name() string { return storage.FileName(f.Info.Level, f.Info.MinTXID, f.Info.MaxTXID) }

// Entry locates one page version: the frame (page header + LZ4 block) of
// Size bytes at Offset in File.
type Entry struct {
	File   *File
	Offset int64
	Size   int64
}

// Version is an immutable view of the database at one TXID. It is safe for
// concurrent use and never changes once returned.
type Version struct{}

// TXID is the transaction this version shows.
func (v *Version) TXID() ltx.TXID { return 0 }

// Timestamp is the commit time of TXID (the header timestamp of the file
// that ends at TXID).
func (v *Version) Timestamp() time.Time { return time.Time{} }

// PageSize is the database page size in bytes.
func (v *Version) PageSize() uint32 { return 0 }

// Commit is the database size in pages at TXID.
func (v *Version) Commit() uint32 { return 0 }

// Lookup returns the newest version of page pgno at or below TXID. It
// returns false for pgno 0, pgno > Commit, and the lock page.
func (v *Version) Lookup(pgno uint32) (Entry, bool) { return Entry{}, false }

// Files are the files the version reads pages from, in plan order.
func (v *Version) Files() []*File { return nil }

// Options tune an Index.
type Options struct {
	Logger      *slog.Logger // slog.Default() if nil
	Concurrency int          // requests in flight while building; 32 if 0
}

// Index tracks the versions of one replica. It is safe for concurrent use.
type Index struct{}

// New returns an index over the replica behind client. It does no I/O.
func New(client storage.Client, opts Options) *Index { return &Index{} }

// Latest returns the newest version built so far, or nil before the first
// Update.
func (x *Index) Latest() *Version { return nil }

// Update lists the replica and returns a version at the newest TXID that can
// be rebuilt, extending the previous latest version with only the new files
// when they continue it, or from a fresh plan when they do not (a gap after
// retention). A late compacted file never replaces a newer page. Readers of
// earlier versions are never blocked or changed.
func (x *Index) Update(ctx context.Context) (*Version, error) { return nil, errUnimplemented }

// At returns a version at exactly txid (ErrTXIDNotFound beyond the newest,
// ErrTXIDUnavailable when no retained chain of files reaches it).
func (x *Index) At(ctx context.Context, txid ltx.TXID) (*Version, error) {
	return nil, errUnimplemented
}

// Replan builds v's TXID again from a fresh listing and plan: the way out
// when a file of v has vanished (retention), which must never be answered
// with a wrong page.
func (x *Index) Replan(ctx context.Context, v *Version) (*Version, error) {
	return nil, errUnimplemented
}

// TXIDAt returns the newest TXID committed at or before t (an error naming t
// and the oldest restorable time when t is earlier than every retained
// TXID).
func (x *Index) TXIDAt(ctx context.Context, t time.Time) (ltx.TXID, error) {
	return 0, errUnimplemented
}
