package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"
)

// SnapshotLevel is the level that holds full snapshots (MinTXID == 1).
// Levels 1..SnapshotLevel-1 hold compactions; level 0 holds one file per
// replicated transaction batch.
const SnapshotLevel = 9

// Client reads and writes the LTX files of one replica.
//
// Every method honours ctx. A missing file is reported with an error that
// matches os.ErrNotExist (errors.Is). Implementations are safe for concurrent
// use.
type Client interface {
	// LTXFiles lists the files of a level whose MinTXID is at or above seek,
	// ordered by MinTXID (then MaxTXID). Keys that do not match the LTX
	// filename pattern are ignored. FileInfo.CreatedAt is the LTX header's
	// timestamp where the backend stores it beside the file (a file's mtime,
	// an object's litestream-timestamp metadata when useMetadata is set);
	// otherwise the time the object was written.
	LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error)

	// OpenLTXFile opens a ranged reader over one file: size bytes from
	// offset, or everything from offset when size is 0. A reader that ends
	// before size bytes returns an error wrapping io.ErrUnexpectedEOF. An
	// offset at or past the end of the file is an error.
	OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error)

	// WriteLTXFile creates the LTX file read from r. The file becomes
	// visible atomically and whole: a reader never sees part of it. The
	// returned info carries the header's timestamp as CreatedAt.
	//
	// It never replaces a file: an LTX file's name is its identity, and
	// two writers must never make one name mean two contents (see
	// ErrFileExists). When the name exists already, the write succeeds if
	// the file holds exactly the bytes of r (a retry of a write that
	// landed, whose answer was lost) and otherwise fails with an error
	// wrapping ErrFileExists, leaving the file as it was. A backend that
	// cannot create without replacing fails with an error wrapping
	// ErrNoConditionalWrites.
	WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error)

	// DeleteLTXFiles removes files; files already gone are not an error.
	DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error

	// DeleteAll removes every file and object of the replica.
	DeleteAll(ctx context.Context) error

	// ReadObject opens an object (see ObjectDir) for reading whole. A
	// missing object matches os.ErrNotExist; an IfNoneMatch that holds
	// fails with ErrNotModified, before any body is sent. The info is the
	// object's as read, Size the length of the body (its ETag is what a
	// later IfNoneMatch or IfMatch takes); with ErrNotModified it still
	// carries the name and the ETag that matched.
	ReadObject(ctx context.Context, name string, opts ReadOptions) (io.ReadCloser, ObjectInfo, error)

	// WriteObject stores an object read from r, visible atomically and
	// whole. A condition that does not hold fails with
	// ErrPreconditionFailed and writes nothing. The info is the object as
	// written, with its new ETag.
	WriteObject(ctx context.Context, name string, r io.Reader, opts WriteOptions) (ObjectInfo, error)

	// ListObjects lists the objects whose names start with dir + "/", at
	// any depth, or every object when dir is "", ordered by name. LTX files
	// are never listed, nor keys that are not valid object names.
	ListObjects(ctx context.Context, dir string) ([]ObjectInfo, error)

	// DeleteObjects removes objects; objects already gone are not an
	// error.
	DeleteObjects(ctx context.Context, names []string) error

	// String describes the replica for logs and errors, without credentials.
	String() string
}

// Wrapper is a client that wraps another (a counting or fault-injecting
// wrapper, the VFS's metered client, the writer's leased client): what the
// wrapped client can do besides the Client methods (hold a lease: see
// package lease) is found through Unwrap. Every wrapper implements it.
type Wrapper interface {
	Client
	Unwrap() Client
}

// ErrInvalidURL is wrapped by every error of ParseURL and Open.
var ErrInvalidURL = errors.New("invalid replica URL")

// ErrFileExists is wrapped by the error of a WriteLTXFile that found a
// file of that name holding other bytes: another writer's file, or one
// this writer made from other inputs. Nothing was written. For a writer it
// means that someone else writes the replica too (a writer paused past
// its lease, whose successor already wrote there): the file stays as it
// was, and the writer must stop rather than fork the replica.
var ErrFileExists = errors.New("a file with other content exists under this name")

// ErrNoConditionalWrites is wrapped, with errors.ErrUnsupported, by the
// errors of storage that cannot write conditionally (create only if
// absent, replace only if unchanged): an S3-compatible server that refuses
// If-None-Match (501 Not Implemented) or ignores it. Without conditional
// writes nothing fences a writer paused past its lease.
var ErrNoConditionalWrites = errors.New("the storage does not support conditional writes")

// ListLevel reads every file of a level at or above seek into a slice.
func ListLevel(ctx context.Context, c Client, level int, seek ltx.TXID, useMetadata bool) ([]*ltx.FileInfo, error) {
	itr, err := c.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil {
		return nil, err
	}
	defer itr.Close()
	var infos []*ltx.FileInfo
	for itr.Next() {
		infos = append(infos, itr.Item())
	}
	// ltx.SliceFileIterator would drop itr.Err(): a listing cut short by a
	// storage error must not pass for a short listing.
	if err := itr.Err(); err != nil {
		return nil, err
	}
	return infos, itr.Close()
}

// AllLister is a Client that lists every level of its replica, 0 through
// SnapshotLevel, with one request (more only past a page of keys: see the
// backends), where LTXFiles takes one request per level. storage/file,
// storage/s3 and storage/mem implement it; storage/http, which cannot
// list, does not. Callers use ListAll, which falls back to one LTXFiles
// per level.
//
// A Wrapper that implements it must list through its Unwrap's client and,
// when that one cannot list all levels at once (see CanListAll), list level
// by level through its own LTXFiles (ListEachLevel), so that what it counts,
// meters or injects is what happens.
type AllLister interface {
	Client

	// AllLTXFiles lists the files of levels 0 through SnapshotLevel,
	// ordered by level, then MinTXID, then MaxTXID: what LTXFiles lists for
	// each level from seek 0, one level after another. Keys that do not
	// match the LTX filename pattern are ignored, as are other levels
	// (LegacyHintLevel). CreatedAt and useMetadata are as for LTXFiles.
	AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error)
}

// CanListAll reports whether ListAll lists c with one request rather
// than one per level: c is an AllLister, and so is every client it wraps,
// down to the backend.
func CanListAll(c Client) bool {
	for {
		if _, ok := c.(AllLister); !ok {
			return false
		}
		w, ok := c.(Wrapper)
		if !ok {
			return true
		}
		c = w.Unwrap()
	}
}

// ListAll lists every level, 0 through SnapshotLevel, and returns the
// files level by level (see AllLister.AllLTXFiles): with one request where
// c can (CanListAll), else with one per level, all at once (one round trip
// however many levels).
func ListAll(ctx context.Context, c Client, useMetadata bool) ([]*ltx.FileInfo, error) {
	a, ok := c.(AllLister)
	if !ok {
		return ListEachLevel(ctx, c, useMetadata, 0)
	}
	infos, err := a.AllLTXFiles(ctx, useMetadata)
	if err != nil {
		return nil, fmt.Errorf("list the levels of %s: %w", c, err)
	}
	return infos, nil
}

// ListEachLevel lists every level, 0 through SnapshotLevel, with one
// LTXFiles each, at most limit at once (0: all at once), and returns the
// files level by level. It is ListAll's way for a client that cannot list
// all levels at once.
func ListEachLevel(ctx context.Context, c Client, useMetadata bool, limit int) ([]*ltx.FileInfo, error) {
	levels := make([][]*ltx.FileInfo, SnapshotLevel+1)
	g, gctx := errgroup.WithContext(ctx)
	if limit > 0 {
		g.SetLimit(limit)
	}
	for level := range levels {
		g.Go(func() error {
			infos, err := ListLevel(gctx, c, level, 0, useMetadata)
			if err != nil {
				return fmt.Errorf("list L%d of %s: %w", level, c, err)
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
