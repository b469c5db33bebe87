package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
)

// errLeaseRanOut is wrapped by the error of a write refused or cut short
// because the lease ran out by this machine's clock: the renewals failed
// for a whole TTL, so another writer may have taken the replica over. It
// is not fatal: the next write renews the lease first, which either
// succeeds (nobody took it) or finds it lost (ErrReplicaConflict).
var errLeaseRanOut = errors.New("the replica's lease ran out before it could be renewed")

// leasedClient is the replica as the writer writes it: every write goes
// out under the lease (see underLease), whichever of the writer's paths
// (sync, compaction, snapshot, hint, retention) makes it.
type leasedClient struct {
	storage.Client
	r *Replicator
}

var (
	_ storage.Wrapper   = leasedClient{}
	_ storage.AllLister = leasedClient{}
)

// Unwrap lets lease.Find find the replica's lease.
func (c leasedClient) Unwrap() storage.Client { return c.Client }

// AllLTXFiles lists as the replica's client does: reads need no lease.
func (c leasedClient) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(c.Client) {
		return storage.ListEachLevel(ctx, c.Client, useMetadata, 0)
	}
	return c.Client.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

// WriteLTXFile creates a file (see storage.Client: never over another),
// under the lease. A file of that name with other content is another
// writer's, written there first: this writer was paused past its lease
// (or runs beside another without one), and stops (ErrReplicaConflict).
func (c leasedClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, rd io.Reader) (*ltx.FileInfo, error) {
	var info *ltx.FileInfo
	err := c.r.underLease(ctx, func(ctx context.Context) (err error) {
		info, err = c.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, rd)
		return err
	})
	if errors.Is(err, storage.ErrFileExists) {
		err = fmt.Errorf("%w: the name is taken by its file (was this writer paused past its lease?); replication stops, and the WAL keeps what is not replicated: %w", ErrReplicaConflict, err)
	}
	return info, err
}

func (c leasedClient) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	return c.r.underLease(ctx, func(ctx context.Context) error { return c.Client.DeleteLTXFiles(ctx, files) })
}

func (c leasedClient) DeleteAll(ctx context.Context) error {
	return c.r.underLease(ctx, c.Client.DeleteAll)
}

func (c leasedClient) WriteObject(ctx context.Context, name string, rd io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	var info storage.ObjectInfo
	err := c.r.underLease(ctx, func(ctx context.Context) (err error) {
		info, err = c.Client.WriteObject(ctx, name, rd, opts)
		return err
	})
	return info, err
}

func (c leasedClient) DeleteObjects(ctx context.Context, names []string) error {
	return c.r.underLease(ctx, func(ctx context.Context) error { return c.Client.DeleteObjects(ctx, names) })
}

// underLease runs write, a request that changes the replica, only while
// this writer holds the lease by this machine's monotonic clock: it renews
// the lease first if half of it is gone, refuses to start once it has run
// out, and cancels the request if it runs out meanwhile. The lease's
// expiry by this clock comes no later than the server's (it is counted
// from before the request that set it, and the server adds a second), so
// a write that ends before it cannot land after another writer took the
// lease over; without this, a writer stalled past its lease, or a request
// retried for longer than it, could write after its successor began.
func (r *Replicator) underLease(ctx context.Context, write func(context.Context) error) error {
	if r.lease == nil {
		return write(ctx)
	}
	if err := r.renewLeaseIfDue(ctx); err != nil {
		return err
	}
	if err := r.leaseRanOut(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			// Expires moves on with every renewal.
			t := time.NewTimer(time.Until(r.lease.Expires()))
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
			if err := r.leaseRanOut(); err != nil {
				cancel(err)
				return
			}
		}
	}()
	err := write(ctx)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errLeaseRanOut) {
		return fmt.Errorf("%w (the request was cut short: %w)", cause, err)
	}
	return err
}

// leaseRanOut returns an error wrapping errLeaseRanOut once the lease has
// run out by this machine's monotonic clock.
func (r *Replicator) leaseRanOut() error {
	if exp := r.lease.Expires(); !time.Now().Before(exp) {
		return fmt.Errorf("%w: not writing to %s: the lease ran out %s ago", errLeaseRanOut, r.client, time.Since(exp).Round(time.Millisecond))
	}
	return nil
}

// renewLeaseIfDue renews the lease when less than half of it is left, so
// that no write is made on a lease about to lapse.
func (r *Replicator) renewLeaseIfDue(ctx context.Context) error {
	if time.Until(r.lease.Expires()) > r.opts.LeaseTTL/2 {
		return nil
	}
	if err := r.lease.Renew(ctx, r.opts.LeaseTTL); err != nil {
		return r.leaseRenewError(ctx, err)
	}
	return nil
}

func (r *Replicator) leaseRenewError(ctx context.Context, err error) error {
	if errors.Is(err, lease.ErrHeld) {
		// err names the replica and the writer that holds it now, or
		// says the lease object is gone: with the replica's files, if
		// its bucket was deleted.
		return r.orLost(ctx, fmt.Errorf("%w: %w; replication stops, and the WAL keeps what is not replicated", ErrReplicaConflict, err))
	}
	r.noteMissingBucket(err)
	return fmt.Errorf("renew lease on %s: %w", r.client, err)
}

// keepLease renews the lease whenever a third of it is gone, from the
// moment it is taken until Close, beside the loops that write: a long
// snapshot or compaction upload, which holds up the maintenance loop,
// must not outlive it. A failed renewal is retried soon; a lease lost to
// another writer is recorded for the loops to stop on (see leaseLost).
func (r *Replicator) keepLease(ctx context.Context) {
	retry := max(r.opts.LeaseTTL/10, 100*time.Millisecond)
	wait := time.Until(r.lease.Expires()) - r.opts.LeaseTTL*2/3
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if wait = time.Until(r.lease.Expires()) - r.opts.LeaseTTL*2/3; wait > 0 {
			continue // an upload renewed it meanwhile
		}
		err := r.lease.Renew(ctx, r.opts.LeaseTTL)
		if errors.Is(err, lease.ErrHeld) {
			// Fatal, unless the bucket is missing (see orLost).
			err = r.leaseRenewError(ctx, err)
		}
		switch {
		case err == nil:
			wait = r.opts.LeaseTTL / 3
		case ctx.Err() != nil:
			return
		case isFatal(err):
			r.leaseLostErr.Store(&err)
			r.log.Error("lost the replica's lease", "error", err)
			return
		default:
			r.noteMissingBucket(err)
			wait = retry
			r.log.Warn("renew lease failed; retrying", "error", err, "retry_in", wait, "expires_in", time.Until(r.lease.Expires()).Round(time.Millisecond))
		}
	}
}

// startKeepLease starts keepLease for the lease just taken.
func (r *Replicator) startKeepLease() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stopLease = cancel
	r.leaseWG.Go(func() { r.keepLease(ctx) })
}

// stopKeepLease stops keepLease, before the lease is released.
func (r *Replicator) stopKeepLease() {
	if r.stopLease != nil {
		r.stopLease()
		r.leaseWG.Wait()
		r.stopLease = nil
	}
}

// leaseLost is the error of the renewal that found the lease taken by
// another writer, if any.
func (r *Replicator) leaseLost() error {
	if p := r.leaseLostErr.Load(); p != nil {
		return *p
	}
	return nil
}

// takeoverSettle is how long a writer that took over the lease of a
// predecessor that died waits before it reads the replica (see
// openLocked). A server commits a PUT whose body it has whole within
// milliseconds; a predecessor killed mid-upload never sends the rest. A
// lease that lapsed needs no wait: its TTL has long passed.
const takeoverSettle = 2 * time.Second
