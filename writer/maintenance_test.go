package writer_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestCompactionAndRetention compacts L0 into L1 and L1 into L2, writes
// snapshots and applies retention, and checks what a user relies on: a
// compacted file carries the commit time of its last TXID (restore by
// time stays honest), retention never removes what a retained TXID needs,
// and what the writer wrote plans and restores through the code the VFS
// uses (storage.ListLevel, index.Plan).
func TestCompactionAndRetention(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	opts := testOpts()
	opts.L0Retention = time.Millisecond
	opts.SnapshotRetention = 200 * time.Millisecond
	opts.CompactionIntervals = []time.Duration{-1, -1}
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)

	var points []restorePoint
	step := func(n int) {
		insert(t, app, n)
		execSQL(t, app, `UPDATE t SET n = n + 1 WHERE id % 5 = 0`)
		mustSync(t, r)
		points = append(points, restorePoint{r.TXID(), dump(t, app)})
		time.Sleep(2 * time.Millisecond)
	}
	for i := 0; i < 4; i++ {
		step(20)
	}
	l1, err := r.Compact(ctx, 1)
	if err != nil || l1 == nil {
		t.Fatalf("compact L1: %v %v", l1, err)
	}
	l0 := listLevel(t, c, 0)
	if l1.MinTXID != 1 || l1.MaxTXID != l0[len(l0)-1].MaxTXID {
		t.Fatalf("L1 file %s does not cover L0 %s..%s", ltx.FormatFilename(l1.MinTXID, l1.MaxTXID), l0[0].MinTXID, l0[len(l0)-1].MaxTXID)
	}
	if !l1.CreatedAt.Equal(l0[len(l0)-1].CreatedAt) {
		t.Fatalf("L1 timestamp %v, want the newest input's %v", l1.CreatedAt, l0[len(l0)-1].CreatedAt)
	}
	if again, err := r.Compact(ctx, 1); err != nil || again != nil {
		t.Fatalf("compacting again with nothing new: %v %v", again, err)
	}
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		step(10)
	}
	if _, err := r.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Compact(ctx, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // the first snapshot expires
	step(5)
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	step(5)

	// L0 retention counts from when the covering L1 file was first seen.
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}

	snaps := listLevel(t, c, storage.SnapshotLevel)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots after retention, want the newest only", len(snaps))
	}
	l0 = listLevel(t, c, 0)
	l1s := listLevel(t, c, 1)
	for _, f := range l0[:len(l0)-1] {
		if f.MaxTXID <= l1s[len(l1s)-1].MaxTXID {
			t.Fatalf("L0 file %s, covered by L1 up to %s, survived retention", ltx.FormatFilename(f.MinTXID, f.MaxTXID), l1s[len(l1s)-1].MaxTXID)
		}
	}
	if l0[0].MinTXID == 1 {
		t.Fatal("retention deleted no L0 file")
	}
	if l0[len(l0)-1].MaxTXID != r.TXID() {
		t.Fatal("the newest L0 file was deleted")
	}

	// Every TXID from the oldest snapshot on that a file ends at restores
	// to the source then; the newest does.
	checkRetained(t, c, r, points)
}

func isEnd(files []*ltx.FileInfo, txid ltx.TXID) bool {
	for _, f := range files {
		if f.MaxTXID == txid {
			return true
		}
	}
	return false
}

// TestEmergencyTruncate: an application reader that stays open keeps
// PASSIVE checkpoints from the end of the WAL, which grows past the
// truncate threshold; the writer then waits for readers and truncates, with
// nothing lost.
func TestEmergencyTruncate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	opts, reg := withMetrics(testOpts())
	opts.MinCheckpointPages = 20
	opts.TruncatePages = 60
	opts.BusyTimeout = 3 * time.Second
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)
	insert(t, app, 10)
	mustSync(t, r)

	// A long read transaction at an old read mark. ReadOnly: the driver
	// begins any other transaction with BEGIN IMMEDIATE, which would hold
	// the write lock and keep the inserts below from committing.
	reader, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	insert(t, app, 100)
	mustSync(t, r) // a PASSIVE checkpoint stops at the reader
	frameSize := int64(4096 + 24)
	for {
		insert(t, app, 200)
		if fi, _ := os.Stat(path + "-wal"); fi.Size() > 32+70*frameSize {
			break
		}
	}
	walBefore, _ := os.Stat(path + "-wal")
	// The next sync passes the truncate threshold; the reader finishes
	// while the writer waits for it.
	go func() {
		time.Sleep(200 * time.Millisecond)
		tx.Rollback()
		reader.Close()
	}()
	mustSync(t, r)
	if n := metric(t, reg, "ltx_writer_checkpoints_total", "mode", "TRUNCATE"); n == 0 {
		t.Fatal("no TRUNCATE checkpoint")
	}
	walAfter, _ := os.Stat(path + "-wal")
	if walAfter.Size() >= walBefore.Size()/4 {
		t.Fatalf("WAL %d bytes after the emergency checkpoint, %d before", walAfter.Size(), walBefore.Size())
	}
	if n := metric(t, reg, "ltx_writer_wal_continuity_lost_total"); n != 0 {
		t.Fatalf("continuity lost %v times", n)
	}
	insert(t, app, 5)
	mustSync(t, r)
	checkRestores(t, c, app, "restore differs from the source")
}

// TestBackground runs the writer's own loops: syncs, compactions,
// snapshots and retention happen without being asked, and Close makes a
// final sync that catches the last commit.
func TestBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	opts, reg := withMetrics(writer.Options{
		SyncInterval:        5 * time.Millisecond,
		CompactionIntervals: []time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
		SnapshotInterval:    100 * time.Millisecond,
		MinCheckpointPages:  30,
	})
	r := newReplicator(t, path, c, opts)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		insert(t, app, 10)
		time.Sleep(5 * time.Millisecond)
		if len(listLevel(t, c, 2)) > 0 && len(listLevel(t, c, storage.SnapshotLevel)) > 1 {
			break
		}
	}
	for _, level := range []int{0, 1, 2, storage.SnapshotLevel} {
		if len(listLevel(t, c, level)) == 0 {
			t.Errorf("the background loops wrote no L%d file", level)
		}
	}
	if metric(t, reg, "ltx_writer_syncs_total") == 0 || metric(t, reg, "ltx_writer_replica_txid") == 0 {
		t.Error("sync metrics not updated")
	}
	insert(t, app, 1)
	want := dump(t, app)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if got, _ := restoreDump(t, c, restore.Options{}); got != want {
		t.Fatal("the final sync at Close missed the last commit")
	}
}
