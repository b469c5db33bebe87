package writer_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// withMetrics returns options with a fresh registry.
func withMetrics(opts writer.Options) (writer.Options, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	return opts, reg
}

// lastL0 returns the newest L0 file and its header.
func lastL0(t *testing.T, c storage.Client) (*ltx.FileInfo, ltx.Header) {
	t.Helper()
	l0 := listLevel(t, c, 0)
	if len(l0) == 0 {
		t.Fatal("no L0 file")
	}
	f := l0[len(l0)-1]
	rc, err := c.OpenLTXFile(context.Background(), 0, f.MinTXID, f.MaxTXID, 0, ltx.HeaderSize)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return f, hdr
}

// TestRestartResumes closes the writer, lets the application write, and
// starts a new writer: it resumes at the next TXID from the WAL position
// in the newest L0 file, with a small file, not a snapshot.
func TestRestartResumes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	insert(t, app, 500)
	r1 := newReplicator(t, path, c, testOpts())
	mustSync(t, r1)
	insert(t, app, 5)
	mustSync(t, r1)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	first := listLevel(t, c, 0)[0]

	insert(t, app, 3) // while no writer runs
	opts, reg := withMetrics(testOpts())
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	mustSync(t, r2)
	if r2.TXID() != 3 {
		t.Fatalf("after restart: TXID %s, want 3", r2.TXID())
	}
	if n := metric(t, reg, "ltx_writer_l0_snapshots_total"); n != 0 {
		t.Fatalf("the restarted writer wrote %v snapshot L0 files, want none", n)
	}
	if n := metric(t, reg, "ltx_writer_wal_continuity_lost_total"); n != 0 {
		t.Fatalf("after restart: WAL continuity lost %v times, want never", n)
	}
	f, hdr := lastL0(t, c)
	if f.Size*4 > first.Size || hdr.WALOffset == 0 {
		t.Fatalf("L0 after restart is %d bytes (the first, whole database, %d) at WAL offset %d: not an increment", f.Size, first.Size, hdr.WALOffset)
	}
	insert(t, app, 2)
	mustSync(t, r2)
	checkRestores(t, c, app, "restore differs from the source after a restart")
}

// TestRestartSnapshotSequence is the sequence that made Litestream start a
// needless new generation: start, snapshot, restart, snapshot, write. The
// checkpoint before each snapshot moves the WAL into the database; the
// write after must still be a small L0 file at the next TXID.
func TestRestartSnapshotSequence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	insert(t, app, 300)

	opts, reg1 := withMetrics(testOpts())
	r1 := newReplicator(t, path, c, opts)
	mustSync(t, r1)
	if _, err := r1.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if n := metric(t, reg1, "ltx_writer_l0_snapshots_total"); n != 1 {
		t.Fatalf("first writer: %v whole-database L0 files, want 1", n)
	}
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	full := listLevel(t, c, 0)[0].Size

	opts, reg2 := withMetrics(testOpts())
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	if _, err := r2.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	txid := r2.TXID()
	insert(t, app, 1)
	mustSync(t, r2)
	if r2.TXID() != txid+1 {
		t.Fatalf("the write after the restart and snapshot is TXID %s, want %s", r2.TXID(), txid+1)
	}
	if n := metric(t, reg2, "ltx_writer_l0_snapshots_total"); n != 0 {
		t.Fatalf("after restart: %v whole-database L0 files, want none", n)
	}
	if n := metric(t, reg2, "ltx_writer_wal_continuity_lost_total"); n != 0 {
		t.Fatalf("after restart: WAL continuity lost %v times, want never", n)
	}
	f, _ := lastL0(t, c)
	if f.Size*4 > full {
		t.Fatalf("the write after restart and snapshot made an L0 of %d bytes; the whole database is %d", f.Size, full)
	}
	checkRestores(t, c, app, "restore differs from the source")
	if snaps := listLevel(t, c, storage.SnapshotLevel); len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
}

// TestRestartAfterApplicationClosed: with no writer running, the last
// application connection closes, which checkpoints and deletes the WAL;
// the application reopens and writes. The new writer cannot tie the WAL to
// the replica, but the database file has the checksum that the position
// file beside it (the files carry none, by default) gives for the
// replica's newest TXID: it goes on with a small file.
func TestRestartAfterApplicationClosed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	insert(t, app, 300)
	r1 := newReplicator(t, path, c, testOpts())
	mustSync(t, r1)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	app.Close()
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("the WAL is still there after the last connection closed: %v", err)
	}
	app = openApp(t, path)
	insert(t, app, 2)

	opts, reg := withMetrics(testOpts())
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	mustSync(t, r2)
	if n := metric(t, reg, "ltx_writer_l0_snapshots_total"); n != 0 {
		t.Fatalf("%v whole-database L0 files after a clean application restart, want none", n)
	}
	if r2.TXID() != 2 {
		t.Fatalf("after a clean application restart: TXID %s, want 2", r2.TXID())
	}
	checkRestores(t, c, app, "restore differs from the source")
}

// TestDatabaseBehindReplica puts an older copy of the database back (as a
// restore from a backup would) and starts a writer: it must notice that
// the database is not the replica's newest state and write a snapshot at
// the next TXID, keeping the newer history restorable, never write
// increments on top of it.
func TestDatabaseBehindReplica(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	insert(t, app, 200)
	r1 := newReplicator(t, path, c, testOpts())
	mustSync(t, r1)
	old := filepath.Join(dir, "old.db")
	execSQL(t, app, `VACUUM INTO '`+old+`'`)
	oldDump := dump(t, app)
	insert(t, app, 50)
	execSQL(t, app, `DELETE FROM t WHERE id < 20`)
	mustSync(t, r1)
	newerTXID, newerDump := r1.TXID(), dump(t, app)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	app.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := os.Rename(old, path); err != nil {
		t.Fatal(err)
	}

	opts, reg := withMetrics(testOpts())
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	mustSync(t, r2)
	if n := metric(t, reg, "ltx_writer_l0_snapshots_total"); n != 1 {
		t.Fatalf("%v snapshot L0 files for a database behind its replica, want 1", n)
	}
	if r2.TXID() != newerTXID+1 {
		t.Fatalf("TXID %s, want %s: the snapshot goes at the next TXID", r2.TXID(), newerTXID+1)
	}
	checkContiguous(t, c, 1)
	if got, _ := restoreDump(t, c, restore.Options{}); got != oldDump {
		t.Fatal("the newest TXID does not restore to the database as it now is")
	}
	if got, _ := restoreDump(t, c, restore.Options{TXID: newerTXID}); got != newerDump {
		t.Fatal("the newer history was lost")
	}
}

// TestAnotherDatabaseSamePath starts a writer on a different database at
// the path of a replicated one.
func TestAnotherDatabaseSamePath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	insert(t, app, 20)
	r1 := newReplicator(t, path, c, testOpts())
	mustSync(t, r1)
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	app.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	app = openApp(t, path)
	insert(t, app, 7)

	r2 := newReplicator(t, path, c, testOpts())
	defer r2.Close(ctx)
	mustSync(t, r2)
	checkRestores(t, c, app, "restore differs from the new database")
}
