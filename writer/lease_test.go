package writer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// leasedReplica is a file replica whose lease the test controls, as an S3
// replica's would be: it can run out, and its renewals can fail.
type leasedReplica struct {
	*file.Client
	lease *testLease
	// blockLevel, when set, makes writes of that level wait until their
	// context ends, as a request that hangs.
	blockLevel int
}

func newLeasedReplica(t *testing.T) *leasedReplica {
	return &leasedReplica{Client: newReplica(t), lease: &testLease{}, blockLevel: -1}
}

func (c *leasedReplica) AcquireLease(_ context.Context, _ lease.Holder, ttl time.Duration) (lease.Lease, error) {
	c.lease.mu.Lock()
	defer c.lease.mu.Unlock()
	c.lease.expires = time.Now().Add(ttl)
	return c.lease, nil
}

func (c *leasedReplica) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if level == c.blockLevel {
		<-ctx.Done()
		return nil, fmt.Errorf("write L%d: %w", level, ctx.Err())
	}
	return c.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

type testLease struct {
	mu       sync.Mutex
	expires  time.Time
	renewErr error // what Renew fails with; nil: it succeeds
	renewals int
}

// set makes the lease run out at expires, and its renewals fail with
// renewErr.
func (l *testLease) set(expires time.Time, renewErr error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expires, l.renewErr = expires, renewErr
}

func (l *testLease) Renew(_ context.Context, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.renewErr != nil {
		return l.renewErr
	}
	l.renewals++
	l.expires = time.Now().Add(ttl)
	return nil
}

func (l *testLease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

func (l *testLease) Release(context.Context) error { return nil }
func (l *testLease) TookOverFrom() *lease.Holder   { return nil }

func (l *testLease) renewed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewals
}

// leasedWriter is a writer, not yet opened, of a new database of 20 rows
// on a leased replica whose lease lasts ttl.
func leasedWriter(t *testing.T, ttl time.Duration) (*sql.DB, *leasedReplica, *writer.Replicator) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 20)
	rep := newLeasedReplica(t)
	opts := testOpts()
	opts.LeaseTTL = ttl
	return app, rep, newReplicator(t, path, rep, opts)
}

// TestNoWriteAfterLeaseRanOut: a writer whose lease ran out while its
// renewals failed (storage unreachable for a whole TTL, or the process
// stalled) writes nothing more (no L0 file, no compaction, no snapshot)
// until a renewal succeeds; then it goes on, with nothing lost.
func TestNoWriteAfterLeaseRanOut(t *testing.T) {
	ctx := context.Background()
	app, rep, r := leasedWriter(t, time.Minute)
	defer r.Close(ctx)
	mustSync(t, r)
	insert(t, app, 5)
	mustSync(t, r)

	rep.lease.set(time.Now().Add(-time.Second), errors.New("connection refused"))
	insert(t, app, 5)
	if err := r.Sync(ctx); err == nil || errors.Is(err, writer.ErrReplicaConflict) {
		t.Fatalf("sync after the lease ran out: %v, want a retryable error", err)
	}
	if _, err := r.Compact(ctx, 1); err == nil {
		t.Fatal("compaction after the lease ran out succeeded")
	}
	if _, err := r.Snapshot(ctx); err == nil {
		t.Fatal("snapshot after the lease ran out succeeded")
	}
	for _, level := range []int{0, 1, storage.SnapshotLevel} {
		if files := listLevel(t, rep, level); level == 0 && len(files) != 2 || level != 0 && len(files) != 0 {
			t.Fatalf("L%d holds %d files after the lease ran out", level, len(files))
		}
	}

	rep.lease.set(time.Now().Add(-time.Second), nil)
	mustSync(t, r)
	if _, err := r.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkRestores(t, rep, app, "restore differs from the source once the lease was renewed")
}

// TestWriteCutShortWhenLeaseRunsOut: a request that is still running when
// the lease runs out (its renewals failing meanwhile) is cancelled rather
// than left to land after another writer may have taken over.
func TestWriteCutShortWhenLeaseRunsOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const ttl = 2 * time.Second
	_, rep, r := leasedWriter(t, ttl)
	defer r.Close(ctx)
	mustSync(t, r)

	// Most of the lease left, so the compaction need not renew it first;
	// it runs out while the upload hangs.
	rep.blockLevel = 1
	rep.lease.set(time.Now().Add(ttl*8/10), errors.New("connection refused"))
	_, err := r.Compact(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), "lease ran out") || ctx.Err() != nil {
		t.Fatalf("compaction whose upload outlives the lease: %v, want it cut short by the lease", err)
	}
	if files := listLevel(t, rep, 1); len(files) != 0 {
		t.Fatalf("L1 holds %d files", len(files))
	}
}

// TestLeaseRenewedWhileIdle: a started writer keeps its lease with no
// write to make, and stops with ErrReplicaConflict as soon as a renewal
// finds the lease taken by another writer.
func TestLeaseRenewedWhileIdle(t *testing.T) {
	ctx := context.Background()
	_, rep, r := leasedWriter(t, time.Second)
	defer r.Close(ctx)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rep.lease.renewed() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the idle writer renewed its lease %d times in 20s", rep.lease.renewed())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep.lease.set(rep.lease.Expires(), fmt.Errorf("%w: taken by another writer", lease.ErrHeld))
	select {
	case <-r.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the writer goes on after losing its lease")
	}
	if !errors.Is(r.Err(), writer.ErrReplicaConflict) {
		t.Fatalf("Err = %v, want ErrReplicaConflict", r.Err())
	}
}
