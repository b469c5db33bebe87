package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Objects are what a replica holds besides its LTX files: what the writer
// publishes for readers (the manifest, the hint of each file). Litestream
// never looks at them. They live in one folder beside the level folders:
//
//	file: <root>/ltx/ltxvfs/<name>
//	s3:   <prefix>/ltxvfs/<name>
//
// A name is a relative, slash-separated path of letters, digits, '.', '-'
// and '_' (see CheckObjectName), such as "manifest" or "hints/<file>". A
// name is an object or a folder of others, never both: the file backend
// cannot store "hints" beside "hints/x".
//
// An object is written whole and replaced atomically. Its ETag changes with
// every write that may have changed its content, so that a conditional
// read (ReadOptions.IfNoneMatch) never takes new content for old, and a
// conditional write (WriteOptions.IfMatch) replaces only the version its
// caller read. Backends that cannot store conditions faithfully refuse
// them rather than pretend.
//
// An ETag may be derived from the content alone: S3's is the MD5 of the
// bytes, so rewriting an object with the bytes it holds keeps its ETag,
// and a swap conditioned on that ETag succeeds again. A writer that must
// tell its own writes from another's puts something new in each (a
// generation, a nonce); the file backend and Mem give every write a new
// ETag whatever its bytes.
const ObjectDir = "ltxvfs"

// Errors of conditional object requests. Both are wrapped with the name of
// the object (errors.Is finds them).
var (
	// ErrNotModified: ReadObject's IfNoneMatch matched the object's ETag;
	// no body was sent.
	ErrNotModified = errors.New("object not modified")
	// ErrPreconditionFailed: WriteObject's condition did not hold (the
	// object exists for IfNoneMatch; it is missing or its ETag is not
	// IfMatch): nothing was written by this request.
	//
	// Over HTTP a write whose answer was lost is retried, and the retry
	// of a conditional write that landed fails its own condition: a caller
	// that must know whether its write landed reads the object back.
	ErrPreconditionFailed = errors.New("precondition failed")
)

// ErrNoBucket is wrapped by the errors of requests to a replica whose
// bucket (or other container of its files) does not exist, as when it was
// deleted while a writer or reader used it: everything the replica held
// went with it.
var ErrNoBucket = errors.New("the replica's bucket does not exist")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name    string    // as given to WriteObject
	Size    int64     // bytes
	ETag    string    // opaque; changes whenever the content may have (empty from ListObjects where a backend cannot tell cheaply)
	ModTime time.Time // when it was last written
}

// ReadOptions condition a read.
type ReadOptions struct {
	// IfNoneMatch, if not empty, is an ETag from an earlier read: when the
	// object still has it, ReadObject fails with ErrNotModified instead of
	// sending the body (a 304 on HTTP).
	IfNoneMatch string
}

// WriteOptions condition a write. At most one of the two is set.
type WriteOptions struct {
	// IfNoneMatch writes only if no object has the name (create, never
	// replace).
	IfNoneMatch bool
	// IfMatch, if not empty, writes only if the object exists with this
	// ETag (compare-and-swap).
	IfMatch string
}

func (o WriteOptions) String() string {
	switch {
	case o.IfNoneMatch:
		return "if none exists"
	case o.IfMatch != "":
		return "if it still has ETag " + o.IfMatch
	}
	return "unconditionally"
}

// CheckObjectName rejects a name that is not a plain relative path of
// letters, digits, '.', '-' and '_' segments, so that no name reaches
// outside the object folder. No segment is empty or starts with '.' (which
// also rules out "." and ".."): hidden names are the file backend's own,
// for its temp and lock files. Every backend checks the names it is given
// with it, so that a name one backend takes every backend takes.
func CheckObjectName(name string) error {
	if name == "" || len(name) > 512 {
		return fmt.Errorf("invalid object name %q: want 1 to 512 characters", name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" {
			return fmt.Errorf("invalid object name %q: empty segment", name)
		}
		if seg[0] == '.' {
			return fmt.Errorf("invalid object name %q: a segment starts with '.'", name)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
				return fmt.Errorf("invalid object name %q: character %q", name, r)
			}
		}
	}
	return nil
}

// CheckObjectDir rejects what ListObjects may not be given: "" (every
// object) or a valid object name.
func CheckObjectDir(dir string) error {
	if dir == "" {
		return nil
	}
	return CheckObjectName(dir)
}

// ReadAllObject reads a whole object, up to limit bytes (a larger object is
// an error naming it). A body that ends before the size the backend gave
// is an error wrapping io.ErrUnexpectedEOF, never a short object.
func ReadAllObject(ctx context.Context, c Client, name string, opts ReadOptions, limit int64) ([]byte, ObjectInfo, error) {
	rc, info, err := c.ReadObject(ctx, name, opts)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, info, fmt.Errorf("read object %s of %s: %d bytes, larger than %d", name, c, info.Size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(ContextReader(ctx, rc), limit+1))
	if err != nil {
		return nil, info, fmt.Errorf("read object %s of %s: %w", name, c, err)
	}
	if int64(len(b)) > limit {
		return nil, info, fmt.Errorf("read object %s of %s: larger than %d bytes", name, c, limit)
	}
	if int64(len(b)) != info.Size {
		return nil, info, fmt.Errorf("read object %s of %s: body ended after %d of its %d bytes: %w", name, c, len(b), info.Size, io.ErrUnexpectedEOF)
	}
	return b, info, nil
}
