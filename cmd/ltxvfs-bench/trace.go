package main

import (
	"context"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// recorder wraps the readers' client and keeps when every request began
// and ended, for what counters cannot tell: how many requests ran one after
// another (round trips) and how long each ranged GET took. The exact counts
// of requests and bytes come from wrap.Counting beneath it.
type recorder struct {
	storage.Client

	mu   sync.Mutex
	reqs []*span
}

// span is one request: a listing ends when its iterator is exhausted or
// closed, a GET when its body is read to the end or closed, as the
// connection to object storage is held until then.
type span struct {
	op         string // "list" (of a level or of objects), "get" (a ranged read) or "object" (an object's read)
	start, end time.Time
	first      time.Time // a GET's response: the body can be read from here
	bytes      int64
}

func newRecorder(c storage.Client) *recorder { return &recorder{Client: c} }

func (r *recorder) Unwrap() storage.Client { return r.Client }

func (r *recorder) begin(op string) *span {
	s := &span{op: op, start: time.Now()}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	return s
}

func (r *recorder) finish(s *span) {
	r.mu.Lock()
	if s.end.IsZero() {
		s.end = time.Now()
	}
	r.mu.Unlock()
}

// mark is a position in the record; since returns the requests begun after
// it.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// since copies the requests begun after mark; one still under way ends now.
func (r *recorder) since(mark int) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := make([]span, 0, len(r.reqs)-mark)
	for _, s := range r.reqs[mark:] {
		c := *s
		if c.end.IsZero() {
			c.end = now
		}
		out = append(out, c)
	}
	return out
}

func (r *recorder) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	s := r.begin("list")
	itr, err := r.Client.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil {
		r.finish(s)
		return nil, err
	}
	return wrap.Iterator(itr, func() { r.finish(s) }), nil
}

// AllLTXFiles records a listing of every level as one "list" span, or
// passes it on level by level where the client beneath cannot (see
// storage.AllLister).
func (r *recorder) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(r.Client) {
		return storage.ListEachLevel(ctx, r, useMetadata, 0)
	}
	s := r.begin("list")
	defer r.finish(s)
	return r.Client.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

func (r *recorder) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	s := r.begin("get")
	rc, err := r.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		r.finish(s)
		return nil, err
	}
	return r.body(s, rc), nil
}

// body records that s's response came and follows its body rc.
func (r *recorder) body(s *span, rc io.ReadCloser) io.ReadCloser {
	r.mu.Lock()
	s.first = time.Now()
	r.mu.Unlock()
	return wrap.Body(rc, func(n int) {
		r.mu.Lock()
		s.bytes += int64(n)
		r.mu.Unlock()
	}, func() { r.finish(s) })
}

// ReadObject records an object's read as an "object" span, apart from the
// ranged GETs whose latencies the report gives. A 304 ends at once.
func (r *recorder) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	s := r.begin("object")
	rc, info, err := r.Client.ReadObject(ctx, name, opts)
	if err != nil {
		r.finish(s)
		return nil, info, err
	}
	return r.body(s, rc), info, nil
}

func (r *recorder) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	s := r.begin("list")
	defer r.finish(s)
	return r.Client.ListObjects(ctx, dir)
}

// roundTrips is the length of the longest chain of requests in which each
// began after the one before it had ended: the requests that had to wait
// for one another, however many ran beside them. Ten listings in parallel,
// then trailers in parallel, then one page make 3. (The greedy choice of
// the earliest-ending request is optimal for this interval problem.)
func roundTrips(spans []span) int {
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b span) int { return a.end.Compare(b.end) })
	n := 0
	var last time.Time
	for _, s := range sorted {
		if n == 0 || !s.start.Before(last) {
			n++
			last = s.end
		}
	}
	return n
}

// gets are the GETs among spans.
func gets(spans []span) []span {
	var out []span
	for _, s := range spans {
		if s.op == "get" {
			out = append(out, s)
		}
	}
	return out
}
