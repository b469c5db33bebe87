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
// and '_' (see CheckObjectName), such as "manifest" or "hints/<file>".
const ObjectDir = "ltxvfs"

// Errors of conditional object requests.
var (
	// ErrNotModified: ReadObject's IfNoneMatch matched the object's ETag;
	// no body was sent.
	ErrNotModified = errors.New("object not modified")
	// ErrPreconditionFailed: WriteObject's condition did not hold (the
	// object exists for IfNoneMatch, or its ETag is not IfMatch): nothing
	// was written.
	ErrPreconditionFailed = errors.New("precondition failed")
)

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
// letters, digits, '.', '-' and '_' segments (no empty, "." or ".."
// segment), so that no name reaches outside the object folder.
func CheckObjectName(name string) error {
	if name == "" || len(name) > 512 {
		return fmt.Errorf("invalid object name %q: want 1 to 512 characters", name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid object name %q: empty, '.' or '..' segment", name)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
				return fmt.Errorf("invalid object name %q: character %q", name, r)
			}
		}
	}
	return nil
}

// ReadAllObject reads a whole object, up to limit bytes (a larger object is
// an error naming it).
func ReadAllObject(ctx context.Context, c Client, name string, opts ReadOptions, limit int64) ([]byte, ObjectInfo, error) {
	rc, info, err := c.ReadObject(ctx, name, opts)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, info, fmt.Errorf("read object %s of %s: %w", name, c, err)
	}
	if int64(len(b)) > limit {
		return nil, info, fmt.Errorf("read object %s of %s: larger than %d bytes", name, c, limit)
	}
	return b, info, nil
}
