package writer_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestRetentionOutlivesThePrunedL1: the L1 file covering some L0 files is
// compacted into L2 and pruned (below the oldest kept snapshot) before
// those L0 files' retention is up. The L0 files must still go once it is
// up, and not before; the L0 files L1's compaction has not reached stay
// (they are its next input), and every TXID a retained file ends at, from
// the oldest snapshot on, still restores.
func TestRetentionOutlivesThePrunedL1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	opts := testOpts()
	opts.CompactionIntervals = []time.Duration{-1, -1}
	opts.L0Retention = time.Second // far longer than the steps below take
	opts.SnapshotRetention = time.Millisecond
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)
	var points []restorePoint
	step := func() {
		insert(t, app, 10)
		mustSync(t, r)
		points = append(points, restorePoint{r.TXID(), dump(t, app)})
	}
	must := func(_ *ltx.FileInfo, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	step()
	step()
	must(r.Compact(ctx, 1))
	first := listLevel(t, c, 1)[0]
	step()
	step()
	must(r.Compact(ctx, 1))
	must(r.Compact(ctx, 2))
	must(r.Snapshot(ctx))
	time.Sleep(5 * time.Millisecond) // that snapshot expires once a newer one exists
	step()
	must(r.Snapshot(ctx))
	step() // after the snapshot, before L1's frontier: L1's next input
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range listLevel(t, c, 1) {
		if f.MaxTXID == first.MaxTXID {
			t.Fatalf("L1 file %s not pruned: the test does not reach the order it is about", ltx.FormatFilename(f.MinTXID, f.MaxTXID))
		}
	}
	if l0 := listLevel(t, c, 0); l0[0].MinTXID != 1 {
		t.Fatalf("L0 starts at %s before its retention is up", l0[0].MinTXID)
	}

	time.Sleep(opts.L0Retention)
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	l0 := listLevel(t, c, 0)
	frontier := newestOf(listLevel(t, c, 1))
	for _, f := range l0[:len(l0)-1] {
		if f.MaxTXID <= frontier {
			t.Errorf("L0 file %s, compacted into L1 up to %s more than the L0 retention ago, survived retention", ltx.FormatFilename(f.MinTXID, f.MaxTXID), frontier)
		}
	}
	if l0[len(l0)-1].MaxTXID != r.TXID() {
		t.Fatal("the newest L0 file was deleted")
	}
	if l0[0].MinTXID != frontier+1 {
		t.Fatalf("L0 starts at %s, want the first TXID L1's compaction has not reached, %s", l0[0].MinTXID, frontier+1)
	}
	// The L0 files after L1's frontier are still its input.
	step()
	if l1, err := r.Compact(ctx, 1); err != nil || l1 == nil || l1.MinTXID != frontier+1 {
		t.Fatalf("compacting the L0 files retention kept: %v, %v", l1, err)
	}
	checkRetained(t, c, r, points)
}

// newestOf is the MaxTXID of the newest file of a level (0 if none).
func newestOf(files []*ltx.FileInfo) ltx.TXID {
	if len(files) == 0 {
		return 0
	}
	return files[len(files)-1].MaxTXID
}

// TestRetentionSchedules runs the writer's own loops with schedules where a
// higher level moves faster than L0 retention (the L1 covering an L0 file
// is compacted further and pruned before the L0 file's retention is up),
// and with no L0 retention: once the application stops writing, every L0
// file it wrote but the newest goes, and the replica still restores.
func TestRetentionSchedules(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts writer.Options
	}{
		{"L1 pruned before L0 retention", writer.Options{
			CompactionIntervals: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
			SnapshotInterval:    100 * time.Millisecond,
			SnapshotRetention:   100 * time.Millisecond,
			L0Retention:         300 * time.Millisecond,
		}},
		{"three levels", writer.Options{
			CompactionIntervals: []time.Duration{30 * time.Millisecond, 60 * time.Millisecond, 90 * time.Millisecond},
			SnapshotInterval:    120 * time.Millisecond,
			SnapshotRetention:   60 * time.Millisecond,
			L0Retention:         400 * time.Millisecond,
		}},
		{"no L0 retention", writer.Options{
			CompactionIntervals: []time.Duration{50 * time.Millisecond},
			SnapshotInterval:    -1,
			L0Retention:         writer.NoL0Retention,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "app.db")
			app := openApp(t, path)
			c := newReplica(t)
			opts := tc.opts
			opts.SyncInterval = 10 * time.Millisecond
			opts.MinCheckpointPages = 50
			opts.ManifestGrace = writer.NoManifestGrace
			r := newReplicator(t, path, c, opts)
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			// Writes through several rounds of every level and past the L0
			// retention, so that pruning overtakes it.
			for end := time.Now().Add(700 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
				insert(t, app, 5)
			}
			mustSync(t, r)
			want, last := dump(t, app), r.TXID()
			// Snapshots go on writing TXIDs (the writer's checkpoints do);
			// the L0 files of the writes above must go but the newest.
			gone := func(l0 []*ltx.FileInfo) bool { return len(l0) == 1 || l0[0].MinTXID > last }
			var l0 []*ltx.FileInfo
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if l0 = listLevel(t, c, 0); gone(l0) {
					break
				}
			}
			if !gone(l0) {
				t.Fatalf("L0 still starts at %s 10 s after the last write, TXID %s (L1 up to %s)",
					ltx.FormatFilename(l0[0].MinTXID, l0[0].MaxTXID), last, newestOf(listLevel(t, c, 1)))
			}
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := restoreDump(t, c, restore.Options{}); got != want {
				t.Fatal("restore after retention differs from the source")
			}
		})
	}
}

// restorePoint is a TXID a test replicated and the rows it held.
type restorePoint struct {
	txid ltx.TXID
	dump string
}

// checkRetained fails unless the newest TXID restores and every recorded
// TXID that a retained file ends at, from the oldest kept snapshot on,
// plans and restores to its rows.
func checkRetained(t *testing.T, c storage.Client, r *writer.Replicator, points []restorePoint) {
	t.Helper()
	all, err := storage.ListAll(context.Background(), c, true)
	if err != nil {
		t.Fatal(err)
	}
	snaps := listLevel(t, c, storage.SnapshotLevel)
	oldest, newest := plan.Restorable(all)
	if newest != r.TXID() || len(snaps) == 0 || oldest > snaps[0].MaxTXID {
		t.Fatalf("restorable %s..%s, want up to %s", oldest, newest, r.TXID())
	}
	restored := 0
	for _, p := range points {
		if _, err := plan.Restore(all, p.txid); err != nil {
			if p.txid >= snaps[0].MaxTXID && isEnd(all, p.txid) {
				t.Fatalf("TXID %s, the end of a retained file after the oldest snapshot, cannot be planned: %v", p.txid, err)
			}
			continue
		}
		if got, _ := restoreDump(t, c, restore.Options{TXID: p.txid}); got != p.dump {
			t.Fatalf("TXID %s restores to something else", p.txid)
		}
		restored++
	}
	if restored < 2 {
		t.Fatalf("only %d recorded TXIDs restorable after retention", restored)
	}
}
