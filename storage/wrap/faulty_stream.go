package wrap

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/superfly/ltx"
)

// The streams Faulty hands out: paced and cut bodies, uploads and listings.

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
