package writer_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

// hangingSync starts a sync that hangs in storage until its context ends,
// and waits until it has run for at least d; stop ends it.
func hangingSync(t *testing.T, r *writer.Replicator, d time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // a failed check must not leave Close waiting on the sync
	errc := make(chan error, 1)
	go func() { errc <- r.Sync(ctx) }()
	select {
	case err := <-errc:
		cancel()
		t.Fatalf("the sync ended (%v) while storage hangs", err)
	case <-time.After(d):
	}
	return func() {
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("a sync whose upload hung until cancelled succeeded")
		}
	}
}

// TestLagWhileSyncHangs: a sync whose upload hangs (stalled storage, a
// half-open connection) reports the replica's lag at once, growing, in
// Lag and in ltx_writer_replica_lag_seconds, from before the commit it
// carries; once storage answers and a sync copies everything, the lag is
// zero. So does a sync that hangs before it knows what to upload (the
// listing of a writer just started).
func TestLagWhileSyncHangs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 10)
	faulty := wrap.NewFaulty(newReplica(t), wrap.FaultyConfig{Seed: 1})
	hang := wrap.Behaviour{SlowRate: 1, SlowDelay: time.Hour} // until the sync's context ends
	reg := prometheus.NewRegistry()
	opts := testOpts()
	opts.Registerer = reg
	r := newReplicator(t, path, faulty, opts)
	t.Cleanup(func() { r.Close(context.Background()) })
	mustSync(t, r)
	if lag := r.Lag(); lag != 0 {
		t.Fatalf("lag %s right after a sync that copied everything", lag)
	}

	faulty.SetBehaviour(wrap.OpWrite, hang)
	insert(t, app, 5)
	committed := time.Now()
	stop := hangingSync(t, r, 200*time.Millisecond)
	// The replica lacks a commit made at least this long ago.
	least := time.Since(committed)
	lag := r.Lag()
	gauge := metric(t, reg, "ltx_writer_replica_lag_seconds")
	if lag < least || gauge < least.Seconds() {
		t.Fatalf("while the upload hangs: lag %s, gauge %.3fs; the replica lacks a commit of %s ago", lag, gauge, least)
	}
	time.Sleep(50 * time.Millisecond)
	if later := r.Lag(); later < lag+50*time.Millisecond {
		t.Fatalf("lag %s, then %s 50ms later: it does not grow while the upload hangs", lag, later)
	}
	stop()
	faulty.SetBehaviour(wrap.OpWrite, wrap.Behaviour{})
	mustSync(t, r)
	if lag := r.Lag(); lag != 0 {
		t.Fatalf("lag %s once the replica caught up", lag)
	}
	checkRestores(t, faulty, app, "the replica differs from the source after the hang")

	// A writer just started whose first listing hangs.
	r.Close(context.Background())
	faulty.SetBehaviour(wrap.OpList, hang)
	r2 := newReplicator(t, path, faulty, testOpts())
	t.Cleanup(func() { r2.Close(context.Background()) })
	stop = hangingSync(t, r2, 100*time.Millisecond)
	first := r2.Lag()
	time.Sleep(50 * time.Millisecond)
	if second := r2.Lag(); first <= 0 || second < first+50*time.Millisecond {
		t.Fatalf("while the first listing hangs: lag %s, then %s 50ms later; want it counted from the sync's start", first, second)
	}
	stop()
	faulty.SetBehaviour(wrap.OpList, wrap.Behaviour{})
}
