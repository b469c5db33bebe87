package wrap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

var (
	_ storage.Wrapper   = (*Faulty)(nil)
	_ storage.AllLister = (*Faulty)(nil)
)

// Op names a kind of request, for per-operation behaviour.
type Op int

const (
	OpList   Op = iota // LTXFiles, AllLTXFiles
	OpOpen             // OpenLTXFile
	OpWrite            // WriteLTXFile
	OpDelete           // DeleteLTXFiles, DeleteAll

	OpObjectRead   // ReadObject
	OpObjectWrite  // WriteObject
	OpObjectList   // ListObjects
	OpObjectDelete // DeleteObjects
)

func (op Op) String() string {
	switch op {
	case OpList:
		return "list"
	case OpOpen:
		return "open"
	case OpWrite:
		return "write"
	case OpDelete:
		return "delete"
	case OpObjectRead:
		return "read object"
	case OpObjectWrite:
		return "write object"
	case OpObjectList:
		return "list objects"
	case OpObjectDelete:
		return "delete objects"
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Behaviour is what Faulty does to one kind of request. The zero value
// passes requests through untouched. Rates are probabilities in [0, 1].
type Behaviour struct {
	// FirstByte delays every request before it reaches the wrapped client,
	// as a round trip to object storage does.
	FirstByte time.Duration
	// Bandwidth, in bytes per second, paces response bodies (OpOpen,
	// OpObjectRead) and uploads (OpWrite, OpObjectWrite); 0 is unlimited.
	Bandwidth int64

	// ErrorRate fails requests with a *StatusError (503) before they reach
	// the wrapped client: nothing is read, written or deleted.
	ErrorRate float64
	// AmbiguousRate lets a request reach the wrapped client and, if it
	// succeeded, reports a *StatusError anyway: a write or delete that
	// landed though the caller was told it failed.
	AmbiguousRate float64
	// SlowRate adds SlowDelay to the first-byte delay.
	SlowRate  float64
	SlowDelay time.Duration
	// TruncateRate cuts a response part-way with an error: an OpOpen or
	// OpObjectRead body fails with an error wrapping io.ErrUnexpectedEOF,
	// an OpList listing fails with a *StatusError after some of its files
	// (an AllLTXFiles or OpObjectList listing fails whole, as it is one
	// slice), an OpWrite or OpObjectWrite upload breaks part-way (the
	// wrapped client must then leave nothing visible).
	TruncateRate float64
	// ShortRate (OpOpen, OpObjectRead) ends a body early as if the
	// connection closed cleanly. A ranged read (size > 0) reports
	// io.ErrUnexpectedEOF, as every backend does; an open-ended read (size
	// 0) and an object's body see a clean io.EOF, and only lengths (the
	// object's Size, which storage.ReadAllObject checks) or checksums can
	// tell.
	ShortRate float64
}

// faults reports whether b injects any fault.
func (b Behaviour) faults() bool {
	return b.ErrorRate > 0 || b.AmbiguousRate > 0 || b.SlowRate > 0 || b.TruncateRate > 0 || b.ShortRate > 0
}

// FaultyConfig configures a Faulty client.
type FaultyConfig struct {
	// Seed fixes the faults: the same seed and the same sequence of calls
	// inject the same faults in the same places.
	Seed uint64

	List, Open, Write, Delete Behaviour

	ObjectRead, ObjectWrite, ObjectList, ObjectDelete Behaviour
}

// Uniform is a configuration with the same behaviour for every operation.
func Uniform(seed uint64, b Behaviour) FaultyConfig {
	return FaultyConfig{
		Seed: seed, List: b, Open: b, Write: b, Delete: b,
		ObjectRead: b, ObjectWrite: b, ObjectList: b, ObjectDelete: b,
	}
}

// behaviourOf points at the behaviour of op in cfg.
func (cfg *FaultyConfig) behaviourOf(op Op) *Behaviour {
	switch op {
	case OpList:
		return &cfg.List
	case OpOpen:
		return &cfg.Open
	case OpWrite:
		return &cfg.Write
	case OpObjectRead:
		return &cfg.ObjectRead
	case OpObjectWrite:
		return &cfg.ObjectWrite
	case OpObjectList:
		return &cfg.ObjectList
	case OpObjectDelete:
		return &cfg.ObjectDelete
	default:
		return &cfg.Delete
	}
}

// FaultCounts counts the faults a Faulty client injected, by kind.
type FaultCounts struct {
	Errors    int64 // requests failed before reaching the wrapped client
	Ambiguous int64 // requests that took effect but were reported failed
	Slow      int64 // requests given the extra SlowDelay
	Truncated int64 // bodies, listings and uploads cut with an error
	Short     int64 // bodies ended early as if cleanly
}

// Total is the number of faults of every kind.
func (c FaultCounts) Total() int64 { return c.Errors + c.Ambiguous + c.Slow + c.Truncated + c.Short }

// StatusError is an injected failure that looks like an HTTP 5xx response
// from object storage: retryable.
type StatusError struct {
	Op         Op
	Name       string // the file or level the request was about
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: injected %d %s", e.Op, e.Name, e.StatusCode, http.StatusText(e.StatusCode))
}

// HTTPStatusCode is the response's status, as smithy-go's errors report it.
func (e *StatusError) HTTPStatusCode() int { return e.StatusCode }

// RetryableError reports that a retry may succeed, as aws-sdk-go-v2's retry
// classifier asks.
func (e *StatusError) RetryableError() bool { return e.StatusCode >= 500 || e.StatusCode == 429 }

// Temporary reports the same as RetryableError.
func (e *StatusError) Temporary() bool { return e.RetryableError() }

// Faulty wraps a client and injects latency and faults, deterministically
// from a seed: each request draws the same number of values from one
// seeded generator, in call order, whatever its outcome, so a sequential
// test sees the same faults in the same places every run. Concurrent
// callers share the generator; which caller gets which fault then depends
// on scheduling, but the rates hold.
//
// Delays honour ctx and use timers, never busy loops. Faulty never makes a
// partial file visible: writes reach the wrapped client whole or as a
// broken upload that the wrapped client must discard.
type Faulty struct {
	c storage.Client

	mu  sync.Mutex
	rng *rand.Rand
	cfg FaultyConfig

	faultsOn atomic.Bool
	errors   atomic.Int64
	ambig    atomic.Int64
	slow     atomic.Int64
	trunc    atomic.Int64
	short    atomic.Int64
}

// NewFaulty wraps c. Faults start switched on.
func NewFaulty(c storage.Client, cfg FaultyConfig) *Faulty {
	f := &Faulty{c: c, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6c7478766673))}
	f.faultsOn.Store(true)
	return f
}

// Unwrap returns the wrapped client.
func (f *Faulty) Unwrap() storage.Client { return f.c }

// SetFaults switches fault injection on or off at runtime; latency stays.
// Requests already under way keep the faults they drew.
func (f *Faulty) SetFaults(on bool) { f.faultsOn.Store(on) }

// SetBehaviour changes the behaviour of one operation at runtime. The
// generator's sequence goes on where it was.
func (f *Faulty) SetBehaviour(op Op, b Behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.cfg.behaviourOf(op) = b
}

// Injected returns the faults injected so far.
func (f *Faulty) Injected() FaultCounts {
	return FaultCounts{
		Errors:    f.errors.Load(),
		Ambiguous: f.ambig.Load(),
		Slow:      f.slow.Load(),
		Truncated: f.trunc.Load(),
		Short:     f.short.Load(),
	}
}

func (f *Faulty) String() string { return f.c.String() }

// plan is what happens to one request, decided when it starts.
type plan struct {
	op        Op
	name      string
	delay     time.Duration
	bandwidth int64
	fail      bool   // fail before the wrapped client
	ambiguous bool   // fail after the wrapped client succeeded
	truncate  bool   // cut with an error
	short     bool   // cut with a clean EOF
	cut       uint64 // where to cut, modulo the expected length
}

func (f *Faulty) plan(op Op, name string) plan {
	f.mu.Lock()
	b := *f.cfg.behaviourOf(op)
	// Always draw the same values, so the sequence does not depend on the
	// configuration or on earlier outcomes.
	rErr, rAmbig, rSlow, rTrunc, rShort := f.rng.Float64(), f.rng.Float64(), f.rng.Float64(), f.rng.Float64(), f.rng.Float64()
	cut := f.rng.Uint64()
	f.mu.Unlock()

	p := plan{op: op, name: name, delay: b.FirstByte, bandwidth: b.Bandwidth, cut: cut}
	if !f.faultsOn.Load() || !b.faults() {
		return p
	}
	if rSlow < b.SlowRate {
		p.delay += b.SlowDelay
		f.slow.Add(1)
	}
	switch {
	case rErr < b.ErrorRate:
		p.fail = true
	case rAmbig < b.AmbiguousRate:
		p.ambiguous = true
	case rTrunc < b.TruncateRate:
		p.truncate = true
	case rShort < b.ShortRate && (op == OpOpen || op == OpObjectRead):
		p.short = true
	}
	return p
}

func (p plan) statusError() error {
	return &StatusError{Op: p.op, Name: p.name, StatusCode: http.StatusServiceUnavailable}
}

// begin waits out the first-byte delay and injects an up-front failure.
func (f *Faulty) begin(ctx context.Context, p plan) error {
	if err := sleep(ctx, p.delay); err != nil {
		return fmt.Errorf("%s %s: %w", p.op, p.name, err)
	}
	if p.fail {
		f.errors.Add(1)
		return p.statusError()
	}
	return nil
}

// end turns a success into an ambiguous failure when planned.
func (f *Faulty) end(p plan, err error) error {
	if err == nil && p.ambiguous {
		f.ambig.Add(1)
		return p.statusError()
	}
	return err
}

func (f *Faulty) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	p := f.plan(OpList, fmt.Sprintf("L%d", level))
	if err := f.begin(ctx, p); err != nil {
		return nil, err
	}
	itr, err := f.c.LTXFiles(ctx, level, seek, useMetadata)
	if err := f.end(p, err); err != nil {
		if itr != nil {
			itr.Close()
		}
		return nil, err
	}
	if p.truncate {
		// Cut after 0..3 files: a listing is a few pages of keys at most.
		return &brokenIterator{FileIterator: itr, left: int(p.cut % 4), f: f, p: p}, nil
	}
	return itr, nil
}

// AllLTXFiles is one OpList request, or one per level where the wrapped
// client lists level by level (see storage.AllLister). A truncated
// listing fails, as a listing whose later pages fail does.
func (f *Faulty) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(f.c) {
		return storage.ListEachLevel(ctx, f, useMetadata, 0)
	}
	return listWhole(ctx, f, f.plan(OpList, "all levels"), func() ([]*ltx.FileInfo, error) {
		return f.c.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
	})
}

// listWhole runs list, a listing answered whole (a slice), as p says: a
// truncated one fails whole.
func listWhole[T any](ctx context.Context, f *Faulty, p plan, list func() ([]T, error)) ([]T, error) {
	if err := f.begin(ctx, p); err != nil {
		return nil, err
	}
	items, err := list()
	if err := f.end(p, err); err != nil {
		return nil, err
	}
	if p.truncate {
		f.trunc.Add(1)
		return nil, fmt.Errorf("%s %s: listing cut short: %w", p.op, p.name, p.statusError())
	}
	return items, nil
}

func (f *Faulty) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	p := f.plan(OpOpen, storage.FileName(level, minTXID, maxTXID))
	if err := f.begin(ctx, p); err != nil {
		return nil, err
	}
	rc, err := f.c.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err := f.end(p, err); err != nil {
		if rc != nil {
			rc.Close()
		}
		return nil, err
	}
	body, err := f.body(ctx, p, rc, size)
	if err != nil {
		return nil, err
	}
	if p.short {
		return storage.ExactReader(body, size, p.name), nil
	}
	return body, nil
}

// body wraps the body of a read of size bytes (0: as many as there are)
// as p plans it.
func (f *Faulty) body(ctx context.Context, p plan, rc io.ReadCloser, size int64) (*faultyBody, error) {
	body := &faultyBody{rc: rc, ctx: ctx, pace: newPacer(p.bandwidth), f: f, p: p, cutAt: -1}
	switch {
	case (p.truncate || p.short) && size > 0:
		body.cutAt = int64(p.cut % uint64(size))
	case p.truncate || p.short:
		// An open-ended read's length is unknown until it is read: take
		// the whole body (test files are small) to cut it part-way.
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", p.op, p.name, err)
		}
		body.rc = io.NopCloser(bytes.NewReader(data))
		if len(data) > 0 {
			body.cutAt = int64(p.cut % uint64(len(data)))
		}
	}
	return body, nil
}

func (f *Faulty) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	p := f.plan(OpWrite, storage.FileName(level, minTXID, maxTXID))
	if err := f.begin(ctx, p); err != nil {
		return nil, err
	}
	// Past the header when it can, so the wrapped client has started
	// writing when the upload breaks.
	up, err := f.upload(ctx, p, r, ltx.HeaderSize)
	if err != nil {
		return nil, err
	}
	info, err := f.c.WriteLTXFile(ctx, level, minTXID, maxTXID, up)
	if err := f.endUpload(p, up, err); err != nil {
		return nil, err
	}
	return info, nil
}

// upload wraps the body of a write as p plans it. A truncated upload
// breaks at or past skip bytes when it is longer.
func (f *Faulty) upload(ctx context.Context, p plan, r io.Reader, skip int64) (*faultyUpload, error) {
	up := &faultyUpload{r: r, ctx: ctx, pace: newPacer(p.bandwidth), cutAt: -1}
	if p.truncate {
		// Take the whole upload (test files are small) so it can break
		// part-way.
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", p.op, p.name, err)
		}
		up.r = bytes.NewReader(data)
		if n := int64(len(data)); n > skip+1 {
			up.cutAt = skip + int64(p.cut%uint64(n-skip))
		} else if n > 0 {
			up.cutAt = int64(p.cut % uint64(n))
		}
		up.err = fmt.Errorf("%s %s: injected connection reset after %d bytes: %w", p.op, p.name, up.cutAt, io.ErrUnexpectedEOF)
	}
	return up, nil
}

// endUpload is end for a write from up, whose wrapped client answered
// err.
func (f *Faulty) endUpload(p plan, up *faultyUpload, err error) error {
	if up.cut {
		f.trunc.Add(1)
		if err == nil {
			// The wrapped client completed a write from a broken upload:
			// that would be a partial file. Say so loudly.
			return fmt.Errorf("%s %s: wrapped client %s accepted an upload that broke after %d bytes", p.op, p.name, f.c, up.cutAt)
		}
	}
	return f.end(p, err)
}

func (f *Faulty) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	p := f.plan(OpDelete, fmt.Sprintf("%d files", len(files)))
	if err := f.begin(ctx, p); err != nil {
		return err
	}
	return f.end(p, f.c.DeleteLTXFiles(ctx, files))
}

func (f *Faulty) DeleteAll(ctx context.Context) error {
	p := f.plan(OpDelete, "all files")
	if err := f.begin(ctx, p); err != nil {
		return err
	}
	return f.end(p, f.c.DeleteAll(ctx))
}
