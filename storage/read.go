package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// ExactReader wraps a ranged read of size bytes so that a body ending early
// is an error naming what was read (io.ErrUnexpectedEOF), never a short read
// taken for the whole range. With size 0 it returns rc unchanged.
func ExactReader(rc io.ReadCloser, size int64, name string) io.ReadCloser {
	if size <= 0 {
		return rc
	}
	return &exactReader{rc: rc, left: size, size: size, name: name}
}

type exactReader struct {
	rc   io.ReadCloser
	left int64
	size int64
	name string
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	if err == io.EOF {
		if r.left > 0 {
			return n, fmt.Errorf("read %s: body ended %d bytes short of the %d requested: %w", r.name, r.left, r.size, io.ErrUnexpectedEOF)
		}
		return n, io.EOF
	}
	return n, err
}

func (r *exactReader) Close() error { return r.rc.Close() }

// ContextReader stops a long read (an upload's body, a copy) once ctx is
// done.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// SameLTXFile reports whether the stored file level/minTXID-maxTXID of c
// holds exactly the bytes of want, read to its end: what a create-only
// WriteLTXFile that found the name taken checks, so that the retry of a
// write that landed is not taken for another writer's file. A missing
// file matches os.ErrNotExist.
func SameLTXFile(ctx context.Context, c Client, level int, minTXID, maxTXID ltx.TXID, want io.Reader) (bool, error) {
	name := FileName(level, minTXID, maxTXID)
	rc, err := c.OpenLTXFile(ctx, level, minTXID, maxTXID, 0, 0)
	if err != nil {
		return false, fmt.Errorf("read back %s: %w", name, err)
	}
	defer rc.Close()
	same, err := sameBytes(ContextReader(ctx, rc), want)
	if err != nil {
		return false, fmt.Errorf("compare %s with the file written: %w", name, err)
	}
	return same, nil
}

// sameBytes compares two streams to their ends.
func sameBytes(a, b io.Reader) (bool, error) {
	const chunk = 64 << 10
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	for {
		na, erra := io.ReadFull(a, ba)
		nb, errb := io.ReadFull(b, bb)
		if erra != nil && erra != io.EOF && erra != io.ErrUnexpectedEOF {
			return false, erra
		}
		if errb != nil && errb != io.EOF && errb != io.ErrUnexpectedEOF {
			return false, errb
		}
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra != nil || errb != nil {
			// Both ended here (same length read): equal only if both
			// ended.
			return erra != nil && errb != nil, nil
		}
	}
}
