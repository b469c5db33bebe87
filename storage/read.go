package storage

import (
	"context"
	"fmt"
	"io"
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
