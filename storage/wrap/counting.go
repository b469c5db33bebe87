package wrap

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

var (
	_ storage.Wrapper   = (*Counting)(nil)
	_ storage.AllLister = (*Counting)(nil)
)

// Counts is a snapshot of what a Counting client has seen.
type Counts struct {
	Lists   int64 // LTXFiles and AllLTXFiles calls (an AllLTXFiles over a client that lists level by level: one per level)
	Opens   int64 // OpenLTXFile calls (one ranged GET each)
	Writes  int64 // WriteLTXFile calls
	Deletes int64 // DeleteLTXFiles and DeleteAll calls

	ObjectReads       int64 // ReadObject calls (one GET each), those answered ErrNotModified included
	ObjectNotModified int64 // ReadObject calls answered ErrNotModified (a 304: no body)
	ObjectWrites      int64 // WriteObject calls
	ObjectLists       int64 // ListObjects calls
	ObjectDeletes     int64 // DeleteObjects calls

	BytesRead    int64 // body bytes handed to callers of OpenLTXFile and ReadObject
	BytesWritten int64 // bytes the wrapped client consumed from WriteLTXFile and WriteObject readers

	InFlight     int64 // requests under way now
	PeakInFlight int64 // most requests under way at once since New or Reset
}

// Requests is the number of requests of every kind, LTX files and objects.
func (c Counts) Requests() int64 {
	return c.Lists + c.Opens + c.Writes + c.Deletes + c.ObjectRequests()
}

// ObjectRequests is the number of object requests of every kind.
func (c Counts) ObjectRequests() int64 {
	return c.ObjectReads + c.ObjectWrites + c.ObjectLists + c.ObjectDeletes
}

// Counting wraps a client and counts its requests and the bytes that cross
// it, exactly, so tests can assert "a warm query makes no request". It is
// safe for concurrent use.
//
// Every call is one request, whether or not it fails. A request is in flight
// from the call until it returns, and for a listing or a body until it is
// exhausted or closed (an open body holds a connection, as an S3 GET does).
type Counting struct {
	c storage.Client

	lists, opens, writes, deletes atomic.Int64
	objReads, objNotModified      atomic.Int64
	objWrites, objLists, objDels  atomic.Int64
	bytesRead, bytesWritten       atomic.Int64
	inFlight, peak                atomic.Int64
}

// NewCounting wraps c.
func NewCounting(c storage.Client) *Counting { return &Counting{c: c} }

// Unwrap returns the wrapped client.
func (c *Counting) Unwrap() storage.Client { return c.c }

// Counts returns the counters as of now.
func (c *Counting) Counts() Counts {
	return Counts{
		Lists:   c.lists.Load(),
		Opens:   c.opens.Load(),
		Writes:  c.writes.Load(),
		Deletes: c.deletes.Load(),

		ObjectReads:       c.objReads.Load(),
		ObjectNotModified: c.objNotModified.Load(),
		ObjectWrites:      c.objWrites.Load(),
		ObjectLists:       c.objLists.Load(),
		ObjectDeletes:     c.objDels.Load(),

		BytesRead:    c.bytesRead.Load(),
		BytesWritten: c.bytesWritten.Load(),
		InFlight:     c.inFlight.Load(),
		PeakInFlight: c.peak.Load(),
	}
}

// Reset zeroes the counters. Requests under way stay in flight, and the
// peak starts again from them.
func (c *Counting) Reset() {
	c.lists.Store(0)
	c.opens.Store(0)
	c.writes.Store(0)
	c.deletes.Store(0)
	for _, n := range []*atomic.Int64{&c.objReads, &c.objNotModified, &c.objWrites, &c.objLists, &c.objDels} {
		n.Store(0)
	}
	c.bytesRead.Store(0)
	c.bytesWritten.Store(0)
	c.peak.Store(c.inFlight.Load())
}

func (c *Counting) String() string { return c.c.String() }

func (c *Counting) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	c.lists.Add(1)
	done := c.start()
	itr, err := c.c.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil {
		done()
		return nil, err
	}
	return Iterator(itr, done), nil
}

// AllLTXFiles counts one listing, or one per level where the wrapped
// client lists level by level (see storage.AllLister).
func (c *Counting) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(c.c) {
		return storage.ListEachLevel(ctx, c, useMetadata, 0)
	}
	c.lists.Add(1)
	defer c.start()()
	return c.c.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

func (c *Counting) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	done := c.start()
	rc, err := c.c.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		done()
		return nil, err
	}
	return Body(rc, c.countRead, done), nil
}

func (c *Counting) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	c.writes.Add(1)
	defer c.start()()
	return c.c.WriteLTXFile(ctx, level, minTXID, maxTXID, &countingReader{r: r, n: &c.bytesWritten})
}

func (c *Counting) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	c.deletes.Add(1)
	defer c.start()()
	return c.c.DeleteLTXFiles(ctx, files)
}

func (c *Counting) DeleteAll(ctx context.Context) error {
	c.deletes.Add(1)
	defer c.start()()
	return c.c.DeleteAll(ctx)
}

func (c *Counting) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	c.objReads.Add(1)
	done := c.start()
	rc, info, err := c.c.ReadObject(ctx, name, opts)
	if err != nil {
		if errors.Is(err, storage.ErrNotModified) {
			c.objNotModified.Add(1)
		}
		done()
		return nil, info, err
	}
	return Body(rc, c.countRead, done), info, nil
}

func (c *Counting) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	c.objWrites.Add(1)
	defer c.start()()
	return c.c.WriteObject(ctx, name, &countingReader{r: r, n: &c.bytesWritten}, opts)
}

func (c *Counting) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	c.objLists.Add(1)
	defer c.start()()
	return c.c.ListObjects(ctx, dir)
}

func (c *Counting) DeleteObjects(ctx context.Context, names []string) error {
	c.objDels.Add(1)
	defer c.start()()
	return c.c.DeleteObjects(ctx, names)
}

// start marks a request in flight and returns the function that ends it,
// which may be called more than once.
func (c *Counting) countRead(n int) { c.bytesRead.Add(int64(n)) }

func (c *Counting) start() (done func()) {
	n := c.inFlight.Add(1)
	for {
		peak := c.peak.Load()
		if n <= peak || c.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	var once sync.Once
	return func() { once.Do(func() { c.inFlight.Add(-1) }) }
}

// Iterator wraps a listing's iterator: done runs when the listing ends
// (its last item was read, or it was closed), maybe more than once.
func Iterator(itr ltx.FileIterator, done func()) ltx.FileIterator {
	return &doneIterator{FileIterator: itr, done: done}
}

type doneIterator struct {
	ltx.FileIterator
	done func()
}

func (itr *doneIterator) Next() bool {
	if itr.FileIterator.Next() {
		return true
	}
	itr.done()
	return false
}

func (itr *doneIterator) Close() error {
	itr.done()
	return itr.FileIterator.Close()
}

// Body wraps a response body: read(n) runs for every n bytes read, done
// when the body ends (read to its end or to an error, or closed), maybe
// more than once.
func Body(rc io.ReadCloser, read func(n int), done func()) io.ReadCloser {
	return &doneBody{rc: rc, read: read, done: done}
}

type doneBody struct {
	rc   io.ReadCloser
	read func(int)
	done func()
}

func (b *doneBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.read(n)
	if err != nil {
		b.done()
	}
	return n, err
}

func (b *doneBody) Close() error {
	b.done()
	return b.rc.Close()
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}
