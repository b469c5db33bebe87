package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/index"
	"github.com/ltxvfs/ltxvfs/internal/ctxtime"
	"github.com/ltxvfs/ltxvfs/internal/token"
	"github.com/ltxvfs/ltxvfs/storage"
)

// DefaultWaitTimeout bounds a wait for a read-your-writes token (wait= and
// PRAGMA ltx_wait) when the DSN gives no wait_timeout=.
const DefaultWaitTimeout = 10 * time.Second

// While a connection waits for a token, polls follow each other sooner
// than the poll interval: the first at once (the writer has published the
// TXID by the time it hands out the token), then after waitPollMin,
// doubling up to the poll interval but never past waitPollMax.
const (
	waitPollMin = 5 * time.Millisecond
	waitPollMax = 500 * time.Millisecond
)

// errWaitTimeout is the cause of a wait that ran out of wait_timeout.
var errWaitTimeout = errors.New("wait_timeout reached")

// waitPragma is PRAGMA ltx_wait = 'TOKEN': it returns the TXID the
// connection sees once that is the token's TXID or newer.
func (f *file) waitPragma(value string) (string, error) {
	if value == "" {
		return "", fmt.Errorf("ltx_wait: give a read-your-writes token, as PRAGMA ltx_wait = '%s<TXID>:<ms>'", token.Prefix)
	}
	tok, err := token.Parse(value)
	if err == nil {
		err = f.wait(f.context(), "the query's context", tok)
	}
	if err != nil {
		return "", fmt.Errorf("ltx_wait=%s: %w", storage.Shown(value), err)
	}
	return f.describe("ltx_txid"), nil
}

// wait returns once the connection sees the token's TXID or newer and the
// replica has shown that the token is its own. A following connection waits
// (see replica.waitFor); one pinned, or inside a read transaction, cannot
// move and fails if it is behind the token. bound names ctx, for errors.
func (f *file) wait(ctx context.Context, bound string, tok token.Token) error {
	var v *index.Version
	switch {
	case f.lock >= 1 && f.tx != nil:
		if v = f.tx; v.TXID() < tok.TXID {
			return fmt.Errorf("TXID %d is newer than the TXID %d this read transaction sees until COMMIT or ROLLBACK: wait before BEGIN", tok.TXID, v.TXID())
		}
	case f.pinned != nil:
		if v = f.pinned; v.TXID() < tok.TXID {
			return fmt.Errorf("TXID %d is newer than this connection's pin at TXID %d: follow the newest TXID (PRAGMA ltx_txid = latest) to wait for it", tok.TXID, v.TXID())
		}
	default:
		timeout := f.waitTimeout
		if timeout <= 0 {
			timeout = DefaultWaitTimeout
		}
		var err error
		if v, err = f.rep.waitFor(ctx, bound, tok.TXID, timeout); err != nil {
			return err
		}
	}
	return f.rep.checkToken(ctx, v, tok)
}

// waitFor returns the latest version once it reaches txid, polling the
// replica meanwhile, or an error once ctx is done or timeout has passed,
// saying where the replica stands.
func (r *replica) waitFor(ctx context.Context, bound string, txid ltx.TXID, timeout time.Duration) (*index.Version, error) {
	wctx, cancel := context.WithTimeoutCause(ctx, timeout, errWaitTimeout)
	defer cancel()
	delay := waitPollMin
	var pollErr error
	for {
		asked := time.Now()
		if v := r.latest(); v != nil && v.TXID() >= txid {
			return v, nil
		}
		if err := r.polls.since(wctx, asked, r.pollOnce); err != nil && wctx.Err() == nil {
			pollErr = err // storage may come back before the deadline
		} else if err == nil {
			pollErr = nil
		}
		if v := r.latest(); v != nil && v.TXID() >= txid {
			return v, nil
		}
		if ctxtime.Sleep(wctx, delay) != nil {
			return nil, r.notVisible(ctx, bound, txid, timeout, pollErr)
		}
		delay = min(2*delay, max(min(r.poll, waitPollMax), waitPollMin))
	}
}

// notVisible is the error of a wait for txid that ended first.
func (r *replica) notVisible(ctx context.Context, bound string, txid ltx.TXID, timeout time.Duration, pollErr error) error {
	at := "no TXID yet"
	if v := r.latest(); v != nil {
		at = fmt.Sprintf("TXID %d, committed %s", v.TXID(), ltx.FormatTimestamp(v.Timestamp()))
	}
	why := fmt.Sprintf("after %s (wait_timeout)", timeout)
	var err error = errWaitTimeout
	if ctx.Err() != nil {
		why, err = "when "+bound+" ended", context.Cause(ctx)
	}
	if pollErr != nil {
		return fmt.Errorf("TXID %d not visible %s: the replica is at %s, and its last poll failed: %w: %w", txid, why, at, pollErr, err)
	}
	return fmt.Errorf("TXID %d not visible %s: the replica is at %s (a token of another replica, or of a writer that stopped before uploading it, is never reached): %w", txid, why, at, err)
}

// pollGate shares the polls of the connections that wait for a token: one
// poll at a time, each waiter content with any poll that began after it
// asked (one that began before could predate the TXID it waits for).
type pollGate struct {
	mu   sync.Mutex
	cur  *gatePoll // in flight, or nil
	last *gatePoll // the newest that ended
}

type gatePoll struct {
	started time.Time
	done    chan struct{} // closed once err is set
	err     error
}

// since returns the error of a poll that began at or after asked, once it
// has ended: the newest that ended, the one in flight, or one it starts
// itself.
func (g *pollGate) since(ctx context.Context, asked time.Time, poll func(context.Context) error) error {
	for {
		g.mu.Lock()
		if g.last != nil && !g.last.started.Before(asked) {
			err := g.last.err
			g.mu.Unlock()
			return err
		}
		if g.cur == nil {
			p := &gatePoll{started: time.Now(), done: make(chan struct{})}
			g.cur = p
			g.mu.Unlock()
			p.err = poll(ctx)
			g.mu.Lock()
			g.cur, g.last = nil, p
			g.mu.Unlock()
			close(p.done)
			return p.err
		}
		p := g.cur
		g.mu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !p.started.Before(asked) {
			return p.err
		}
	}
}

// errForeignToken: the replica committed the token's TXID at another time.
var errForeignToken = errors.New("the token is not from this replica (or the replica was started over)")

// checkToken checks the token's commit time against what v and its
// replica say of TXID tok.TXID: the header timestamp of a file that ends
// there, exactly; failing one (compacted and deleted by retention), the
// commit times of the files around it, between which a TXID's falls.
func (r *replica) checkToken(ctx context.Context, v *index.Version, tok token.Token) error {
	b, err := r.commitTime(ctx, v, tok.TXID)
	if err != nil {
		return fmt.Errorf("check the token against TXID %d of the replica: %w", tok.TXID, err)
	}
	ms, says := tok.Time.UnixMilli(), ltx.FormatTimestamp(tok.Time)
	switch {
	case b.exact != nil:
		if !tok.Matches(b.exact.ms) {
			return fmt.Errorf("%w: TXID %d was committed at %s here (%s), at %s by the token", errForeignToken, tok.TXID, stamp(b.exact.ms), b.exact.name, says)
		}
	case b.before != nil && ms < b.before.ms:
		return fmt.Errorf("%w: the token says TXID %d was committed at %s, before TXID %d was here (%s, committed %s)",
			errForeignToken, tok.TXID, says, b.before.txid, b.before.name, stamp(b.before.ms))
	case b.after != nil && ms > b.after.ms:
		return fmt.Errorf("%w: the token says TXID %d was committed at %s, after TXID %d was here (%s, committed %s)",
			errForeignToken, tok.TXID, says, b.after.txid, b.after.name, stamp(b.after.ms))
	}
	return nil
}

func stamp(ms int64) string { return ltx.FormatTimestamp(time.UnixMilli(ms)) }

// fileStamp is a file's last TXID and header timestamp (ms).
type fileStamp struct {
	name string
	txid ltx.TXID
	ms   int64
}

func stampOf(f *index.File) *fileStamp {
	return &fileStamp{name: f.Name(), txid: f.Info.MaxTXID, ms: f.Header.Timestamp}
}

// commitBounds is what a replica shows of one TXID's commit time: the file
// that ends there, or else the newest file that ends before it and the
// oldest that ends after it (either may be missing).
type commitBounds struct {
	exact, before, after *fileStamp
}

// commitTime finds the file of v's plan that ends at txid; failing that,
// txid's L0 file, if retention has not deleted it yet (one read of its
// header); failing that, the files of the plan around txid.
func (r *replica) commitTime(ctx context.Context, v *index.Version, txid ltx.TXID) (commitBounds, error) {
	var b commitBounds
	for _, f := range v.Plan() {
		switch end := f.Info.MaxTXID; {
		case end == txid:
			return commitBounds{exact: stampOf(f)}, nil
		case end < txid && (b.before == nil || end > b.before.txid):
			b.before = stampOf(f)
		case end > txid && (b.after == nil || end < b.after.txid):
			b.after = stampOf(f)
		}
	}
	hdr, err := r.readL0Header(ctx, txid)
	switch {
	case err == nil:
		return commitBounds{exact: &fileStamp{name: storage.FileName(0, txid, txid), txid: txid, ms: hdr.Timestamp}}, nil
	case errors.Is(err, fs.ErrNotExist):
		r.log.Debug("ltx vfs: no file ends at the token's TXID any more; checked against the files around it", "txid", txid.String())
		return b, nil
	default:
		return b, err
	}
}

// readL0Header reads the header of the L0 file of txid.
func (r *replica) readL0Header(ctx context.Context, txid ltx.TXID) (ltx.Header, error) {
	name := storage.FileName(0, txid, txid)
	rc, err := r.client.OpenLTXFile(ctx, 0, txid, txid, 0, ltx.HeaderSize)
	if err != nil {
		return ltx.Header{}, fmt.Errorf("read header of %s: %w", name, err)
	}
	defer rc.Close()
	buf := make([]byte, ltx.HeaderSize)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return ltx.Header{}, fmt.Errorf("read header of %s: %w", name, err)
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(buf); err != nil {
		return ltx.Header{}, fmt.Errorf("header of %s: %w", name, err)
	}
	if err := hdr.Validate(); err != nil {
		return ltx.Header{}, fmt.Errorf("header of %s: %w", name, err)
	}
	if hdr.MaxTXID != txid {
		return ltx.Header{}, fmt.Errorf("header of %s says it ends at TXID %d", name, hdr.MaxTXID)
	}
	return hdr, nil
}

// waitParams reads wait= and wait_timeout=.
func waitParams(wait, timeout string, hasWait, hasTimeout bool) (tok token.Token, d time.Duration, err error) {
	if hasWait {
		if tok, err = token.Parse(wait); err != nil {
			return tok, 0, fmt.Errorf("wait=%s: %w", wait, err) // redacted by parseParams
		}
	}
	if hasTimeout {
		d, err = time.ParseDuration(timeout)
		if err != nil || d <= 0 {
			return tok, 0, fmt.Errorf("wait_timeout=%s: want a positive duration, like wait_timeout=10s or wait_timeout=500ms", timeout)
		}
	}
	return tok, d, nil
}

// waitOpen is wait= at open: the connection's first transaction sees the
// token's TXID or newer.
func (f *file) waitOpen(ctx context.Context, raw string, tok token.Token) error {
	if err := f.wait(ctx, fmt.Sprintf("the open's time limit (%s)", openTimeout), tok); err != nil {
		return fmt.Errorf("wait=%s: %w", storage.Shown(raw), err)
	}
	return nil
}
