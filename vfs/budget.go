package vfs

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/bytesize"
	"github.com/ltxvfs/ltxvfs/storage"
)

// budget bounds what one statement (see statement) may fetch from
// storage: max_requests= and max_bytes= in the DSN. 0 is no bound.
type budget struct {
	requests    int64
	bytes       int64
	requestsRaw string // as given, for errors
	bytesRaw    string
}

// BudgetError is the error of a statement stopped by its budget: the
// storage request it needed next would have taken it past max_requests=
// or max_bytes=. The request is not made; the statement fails, and the
// connection's next statement starts with a whole budget. It reaches a
// database/sql caller wrapped in the driver's error: use errors.As.
type BudgetError struct {
	Param string // "max_requests" or "max_bytes"
	Limit int64  // the budget, in requests or bytes
	Given string // the budget as given in the DSN
	Used  int64  // requests made, or bytes read and under way
	Next  int64  // bytes of the refused read (max_bytes)
}

func (e *BudgetError) Error() string {
	if e.Param == "max_requests" {
		return fmt.Sprintf("ltx vfs: statement exceeded max_requests=%s: it needed storage request %d (the budget covers one statement, or a whole BEGIN...COMMIT)", e.Given, e.Used+1)
	}
	limit := e.Given
	if limit != strconv.FormatInt(e.Limit, 10) {
		limit = fmt.Sprintf("%s (%d bytes)", e.Given, e.Limit)
	}
	return fmt.Sprintf("ltx vfs: statement exceeded max_bytes=%s: it had read %d bytes from storage and needed %d more (the budget covers one statement, or a whole BEGIN...COMMIT)", limit, e.Used, e.Next)
}

// start accounts for a request of size bytes (0: not known) about to be
// made for the statement, or refuses it when it would take the statement
// past its budget. A read ahead refused so is dropped by the page cache
// (a read ahead that fails fails nothing): the statement reads those pages
// when it asks for them, and fails then if it must. So reads ahead count
// against the statement that started them, but never take it past its
// budget, and the error always names a read the statement needed.
func (st *statement) start(size int64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended && st.held == 0 {
		return context.Canceled // a read ahead of a statement that ended
	}
	b := st.budget
	var over error
	switch {
	case b.requests > 0 && st.requests+1 > b.requests:
		over = &BudgetError{Param: "max_requests", Limit: b.requests, Given: b.requestsRaw, Used: st.requests}
	case b.bytes > 0 && st.bytes+st.reserved+size > b.bytes:
		over = &BudgetError{Param: "max_bytes", Limit: b.bytes, Given: b.bytesRaw, Used: st.bytes + st.reserved, Next: size}
	}
	if over != nil {
		return over
	}
	st.requests++
	st.reserved += size
	st.inflight++
	return nil
}

// spare reports whether the statement is open, not a scan, and would still be within
// half its budget after n more requests of a page or so each: what may be
// spent on reads it has not asked for and may never need (the B-tree walk,
// interior.go), leaving the other half to those it needs.
func (st *statement) spare(n int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.budget
	switch {
	case st.ended, st.scanning:
		return false
	case b.requests > 0 && 2*(st.requests+n) > b.requests:
		return false
	case b.bytes > 0 && 2*(st.bytes+st.reserved+n*spareBytes) > b.bytes:
		return false
	}
	return true
}

// scans marks the statement as a scan (it reads ahead): the walk, which
// fetches interior pages all over the trees, does not compete with its
// reads, and goes on with the next statement (a lookup's, which needs it).
func (st *statement) scans() {
	st.mu.Lock()
	st.scanning = true
	st.mu.Unlock()
}

// spareBytes is what spare counts for a request: a page of the largest
// size with its frame header, as the walk reads.
const spareBytes = 64<<10 + 64

// read counts n bytes of a body, of a request that reserved some.
func (st *statement) read(n int64, reserved *int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.bytes += n
	back := min(n, *reserved)
	*reserved -= back
	st.reserved -= back
}

// finish ends a request: what it reserved and did not read is released.
func (st *statement) finish(reserved int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reserved -= reserved
	st.inflight--
	st.settle()
}

// statClient counts, per statement, the requests made under a context
// carrying one (queryContext), and refuses those past its budget before
// they reach storage. Requests for no statement (opens, polls, PRAGMAs)
// pass through.
type statClient struct {
	storage.Client
}

var (
	_ storage.Wrapper   = (*statClient)(nil)
	_ storage.AllLister = (*statClient)(nil)
)

func (c *statClient) Unwrap() storage.Client { return c.Client }

func (c *statClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	st := statementOf(ctx)
	if st == nil {
		return c.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	}
	if err := st.start(size); err != nil {
		return nil, err
	}
	rc, err := c.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		st.finish(size)
		return nil, err
	}
	return &statBody{ReadCloser: rc, st: st, reserved: size}, nil
}

func (c *statClient) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	st := statementOf(ctx)
	if st == nil {
		return c.Client.ReadObject(ctx, name, opts)
	}
	if err := st.start(0); err != nil {
		return nil, storage.ObjectInfo{}, err
	}
	rc, info, err := c.Client.ReadObject(ctx, name, opts)
	if err != nil {
		st.finish(0)
		return nil, info, err
	}
	return &statBody{ReadCloser: rc, st: st}, info, nil
}

func (c *statClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	st := statementOf(ctx)
	if st == nil {
		return c.Client.LTXFiles(ctx, level, seek, useMetadata)
	}
	if err := st.start(0); err != nil {
		return nil, err
	}
	itr, err := c.Client.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil {
		st.finish(0)
		return nil, err
	}
	return &statIterator{FileIterator: itr, st: st}, nil
}

// AllLTXFiles is one request of its statement, or one per level where the
// client lists level by level (see storage.AllLister).
func (c *statClient) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(c.Client) {
		return storage.ListEachLevel(ctx, c, useMetadata, 0)
	}
	st := statementOf(ctx)
	if st != nil {
		if err := st.start(0); err != nil {
			return nil, err
		}
		defer st.finish(0)
	}
	return c.Client.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

func (c *statClient) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	st := statementOf(ctx)
	if st == nil {
		return c.Client.ListObjects(ctx, dir)
	}
	if err := st.start(0); err != nil {
		return nil, err
	}
	defer st.finish(0)
	return c.Client.ListObjects(ctx, dir)
}

// statBody counts the bytes of a body for its statement; the request ends
// at its end or Close.
type statBody struct {
	io.ReadCloser
	st       *statement
	reserved int64
	once     sync.Once
}

func (b *statBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.st.read(int64(n), &b.reserved)
	}
	if err != nil {
		b.done()
	}
	return n, err
}

func (b *statBody) Close() error {
	b.done()
	return b.ReadCloser.Close()
}

func (b *statBody) done() { b.once.Do(func() { b.st.finish(b.reserved) }) }

type statIterator struct {
	ltx.FileIterator
	st   *statement
	once sync.Once
}

func (itr *statIterator) Next() bool {
	if itr.FileIterator.Next() {
		return true
	}
	itr.done()
	return false
}

func (itr *statIterator) Close() error {
	itr.done()
	return itr.FileIterator.Close()
}

func (itr *statIterator) done() { itr.once.Do(func() { itr.st.finish(0) }) }

// parseBudget reads max_requests= and max_bytes= (see readParams).
func parseBudget(requests, bytes string, hasRequests, hasBytes bool) (budget, error) {
	var b budget
	if hasRequests {
		n, err := strconv.ParseInt(strings.TrimSpace(requests), 10, 64)
		if err != nil || n < 1 {
			return b, fmt.Errorf("max_requests=%s: want a whole number of storage requests, at least 1 (a statement that needs more fails)", storage.Shown(requests))
		}
		b.requests, b.requestsRaw = n, requests
	}
	if hasBytes {
		n, err := bytesize.Parse(bytes)
		if err != nil {
			return b, fmt.Errorf("max_bytes=%s: %w (a statement that needs to read more from storage fails)", storage.Shown(bytes), err)
		}
		b.bytes, b.bytesRaw = n, bytes
	}
	return b, nil
}
