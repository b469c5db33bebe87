package storagetest

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

var _ storage.Client = (*Faulty)(nil)

// Op names a kind of request, for per-operation behaviour.
type Op int

const (
	OpList   Op = iota // LTXFiles
	OpOpen             // OpenLTXFile
	OpWrite            // WriteLTXFile
	OpDelete           // DeleteLTXFiles, DeleteAll
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
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Behaviour is what Faulty does to one kind of request. The zero value
// passes requests through untouched. Rates are probabilities in [0, 1].
type Behaviour struct {
	// FirstByte delays every request before it reaches the wrapped client,
	// as a round trip to object storage does.
	FirstByte time.Duration
	// Bandwidth, in bytes per second, paces response bodies (OpOpen) and
	// uploads (OpWrite); 0 is unlimited.
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
	// TruncateRate cuts a response part-way with an error: an OpOpen body
	// fails with an error wrapping io.ErrUnexpectedEOF, an OpList listing
	// fails with a *StatusError after some of its files, an OpWrite upload
	// breaks part-way (the wrapped client must then leave nothing visible).
	TruncateRate float64
	// ShortRate (OpOpen) ends a body early as if the connection closed
	// cleanly. A ranged read (size > 0) reports io.ErrUnexpectedEOF, as
	// every backend does; an open-ended read (size 0) sees a clean io.EOF,
	// and only lengths or checksums can tell.
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
}

// Uniform is a configuration with the same behaviour for every operation.
func Uniform(seed uint64, b Behaviour) FaultyConfig {
	return FaultyConfig{Seed: seed, List: b, Open: b, Write: b, Delete: b}
}

func (cfg FaultyConfig) behaviour(op Op) Behaviour {
	switch op {
	case OpList:
		return cfg.List
	case OpOpen:
		return cfg.Open
	case OpWrite:
		return cfg.Write
	default:
		return cfg.Delete
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
	switch op {
	case OpList:
		f.cfg.List = b
	case OpOpen:
		f.cfg.Open = b
	case OpWrite:
		f.cfg.Write = b
	case OpDelete:
		f.cfg.Delete = b
	}
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
	b := f.cfg.behaviour(op)
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
	case rShort < b.ShortRate && op == OpOpen:
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
	if p.short {
		return storage.ExactReader(body, size, p.name), nil
	}
	return body, nil
}

func (f *Faulty) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	p := f.plan(OpWrite, storage.FileName(level, minTXID, maxTXID))
	if err := f.begin(ctx, p); err != nil {
		return nil, err
	}
	up := &faultyUpload{r: r, ctx: ctx, pace: newPacer(p.bandwidth), cutAt: -1}
	if p.truncate {
		// Take the whole upload (test files are small) so it can break
		// part-way, past the header when it can, so the wrapped client
		// has started writing when the upload breaks.
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", p.op, p.name, err)
		}
		up.r = bytes.NewReader(data)
		if n := int64(len(data)); n > ltx.HeaderSize+1 {
			up.cutAt = ltx.HeaderSize + int64(p.cut%uint64(n-ltx.HeaderSize))
		} else if n > 0 {
			up.cutAt = int64(p.cut % uint64(n))
		}
		up.err = fmt.Errorf("%s %s: injected connection reset after %d bytes: %w", p.op, p.name, up.cutAt, io.ErrUnexpectedEOF)
	}
	info, err := f.c.WriteLTXFile(ctx, level, minTXID, maxTXID, up)
	if up.cut {
		f.trunc.Add(1)
		if err == nil {
			// The wrapped client completed a write from a broken upload:
			// that would be a partial file. Say so loudly.
			return nil, fmt.Errorf("%s %s: wrapped client %s accepted an upload that broke after %d bytes", p.op, p.name, f.c, up.cutAt)
		}
	}
	if err := f.end(p, err); err != nil {
		return nil, err
	}
	return info, nil
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

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer holds a stream to a bandwidth. It keeps the schedule from the
// stream's start, so a timer that fires late is made up by later reads
// instead of adding up.
type pacer struct {
	bandwidth int64
	start     time.Time
	n         int64
}

// minPause is the smallest wait worth a timer; shorter lags are carried to
// the next read.
const minPause = 200 * time.Microsecond

func newPacer(bandwidth int64) *pacer { return &pacer{bandwidth: bandwidth} }

// wait accounts for n more bytes and waits until the schedule allows them.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.bandwidth <= 0 || n <= 0 {
		return nil
	}
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.n += int64(n)
	due := p.start.Add(time.Duration(float64(p.n) / float64(p.bandwidth) * float64(time.Second)))
	if d := time.Until(due); d >= minPause {
		return sleep(ctx, d)
	}
	return nil
}

type faultyBody struct {
	rc    io.ReadCloser
	ctx   context.Context
	pace  *pacer
	f     *Faulty
	p     plan
	cutAt int64 // -1: no cut
	n     int64
	err   error // once cut, every read returns it
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", b.p.name, err)
	}
	if b.cutAt >= 0 {
		if left := b.cutAt - b.n; left <= 0 {
			return 0, b.cut()
		} else if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if werr := b.pace.wait(b.ctx, n); werr != nil {
		return n, fmt.Errorf("read %s: %w", b.p.name, werr)
	}
	return n, err
}

// cut ends the body as planned. A ranged body shorter than the cut point
// ends as the wrapped client ends it, and is not counted as a fault.
func (b *faultyBody) cut() error {
	if b.p.short {
		b.f.short.Add(1)
		b.err = io.EOF
	} else {
		b.f.trunc.Add(1)
		b.err = fmt.Errorf("read %s: injected connection reset after %d bytes: %w", b.p.name, b.n, io.ErrUnexpectedEOF)
	}
	return b.err
}

func (b *faultyBody) Close() error { return b.rc.Close() }

type faultyUpload struct {
	r     io.Reader
	ctx   context.Context
	pace  *pacer
	cutAt int64 // -1: no cut
	err   error
	n     int64
	cut   bool
}

func (u *faultyUpload) Read(p []byte) (int, error) {
	if err := u.ctx.Err(); err != nil {
		return 0, err
	}
	if u.cutAt >= 0 {
		if left := u.cutAt - u.n; left <= 0 {
			u.cut = true
			return 0, u.err
		} else if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	if werr := u.pace.wait(u.ctx, n); werr != nil {
		return n, werr
	}
	return n, err
}

// brokenIterator yields some files of a listing, then fails.
type brokenIterator struct {
	ltx.FileIterator
	left int
	f    *Faulty
	p    plan
	err  error
}

func (itr *brokenIterator) Next() bool {
	if itr.err != nil {
		return false
	}
	if itr.left == 0 {
		itr.f.trunc.Add(1)
		itr.err = fmt.Errorf("%s %s: listing cut short: %w", itr.p.op, itr.p.name, itr.p.statusError())
		return false
	}
	if !itr.FileIterator.Next() {
		return false
	}
	itr.left--
	return true
}

func (itr *brokenIterator) Err() error {
	if itr.err != nil {
		return itr.err
	}
	return itr.FileIterator.Err()
}
