package writer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/plan"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

func TestNotSQLite(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"text.db":  "hello, this is not a database at all, but it is long enough to hold a header of one hundred bytes.....",
		"short.db": "SQLite",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := writer.New(path, newReplica(t), writer.Options{})
		if !errors.Is(err, writer.ErrNotSQLite) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want ErrNotSQLite naming the file", name, err)
		}
	}
	if _, err := writer.New(filepath.Join(dir, "missing.db"), newReplica(t), writer.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing database: got %v", err)
	}
	if _, err := writer.New(filepath.Join(dir, "text.db"), newReplica(t), writer.Options{CompactionIntervals: make([]time.Duration, 9)}); err == nil {
		t.Error("nine compaction levels accepted")
	}
}

func TestSecondWriterRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newReplica(t)
	p1, p2 := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	openApp(t, p1)
	openApp(t, p2)
	r1 := newReplicator(t, p1, c, testOpts())
	defer r1.Close(ctx)
	mustSync(t, r1)
	for _, path := range []string{p1, p2} {
		r2 := newReplicator(t, path, c, testOpts())
		err := r2.Open(ctx)
		if !errors.Is(err, writer.ErrReplicaConflict) || !strings.Contains(err.Error(), "pid") {
			t.Fatalf("second writer of %s: got %v, want ErrReplicaConflict naming the holder", filepath.Base(path), err)
		}
		r2.Close(ctx)
	}
	// Once the first writer is gone, another may take over.
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r3 := newReplicator(t, p1, c, testOpts())
	defer r3.Close(ctx)
	mustSync(t, r3)
}

// noLease hides the client's lease: the writer must then notice another
// writer by the files it finds.
type noLease struct{ storage.Client }

func TestSecondWriterDetectedWithoutLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := noLease{newReplica(t)}
	p1, p2 := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	app1 := openApp(t, p1)
	app2 := openApp(t, p2)
	r1 := newReplicator(t, p1, c, testOpts())
	defer r1.Close(ctx)
	mustSync(t, r1)
	insert(t, app2, 5)
	r2 := newReplicator(t, p2, c, testOpts())
	defer r2.Close(ctx)
	mustSync(t, r2) // writes TXID 2 on top of r1's history
	theirs, _ := lastL0(t, c)

	insert(t, app1, 5)
	err := r1.Sync(ctx)
	if !errors.Is(err, writer.ErrReplicaConflict) {
		t.Fatalf("first writer after a second wrote: got %v, want ErrReplicaConflict", err)
	}
	if now, _ := lastL0(t, c); now.MaxTXID != theirs.MaxTXID || now.Size != theirs.Size || !now.CreatedAt.Equal(theirs.CreatedAt) {
		t.Fatal("the first writer wrote over the second writer's file")
	}
}

// TestStorageUnreachable fails every upload for a while: syncs fail and
// report the lag, the application goes on writing and checkpointing, and
// once storage is back the replica catches up with nothing lost.
func TestStorageUnreachable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	faulty := wrap.NewFaulty(newReplica(t), wrap.FaultyConfig{Seed: 1})
	opts := testOpts()
	r := newReplicator(t, path, faulty, opts)
	defer r.Close(ctx)
	insert(t, app, 10)
	mustSync(t, r)
	before := r.TXID()

	faulty.SetBehaviour(wrap.OpWrite, wrap.Behaviour{ErrorRate: 1})
	for i := 0; i < 5; i++ {
		insert(t, app, 40)
		if err := r.Sync(ctx); err == nil {
			t.Fatal("sync succeeded with every upload failing")
		}
		checkpointAll(t, path)
	}
	time.Sleep(10 * time.Millisecond)
	if r.TXID() != before || r.Lag() == 0 {
		t.Fatalf("during the outage: TXID %s (was %s), lag %s", r.TXID(), before, r.Lag())
	}

	faulty.SetBehaviour(wrap.OpWrite, wrap.Behaviour{})
	mustSync(t, r)
	if r.Lag() != 0 {
		t.Fatalf("lag %s after catching up", r.Lag())
	}
	checkRestores(t, faulty, app, "restore differs from the source after the outage")
}

// TestAmbiguousUploads reports half the uploads failed although they
// landed; without a lease the writer must recognize its own file.
func TestAmbiguousUploads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	faulty := wrap.NewFaulty(newReplica(t), wrap.FaultyConfig{Seed: 3, Write: wrap.Behaviour{AmbiguousRate: 0.5}})
	c := noLease{faulty}
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	failures := 0
	for i := 0; i < 20; i++ {
		insert(t, app, 3)
		for r.Sync(ctx) != nil {
			failures++
		}
	}
	if faulty.Injected().Ambiguous == 0 {
		t.Fatal("no ambiguous upload injected")
	}
	checkRestores(t, c, app, "restore differs from the source")
}

// diskFull fails uploads with ENOSPC while full is set.
type diskFull struct {
	storage.Client
	full atomic.Bool
}

func (d *diskFull) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	if d.full.Load() {
		io.Copy(io.Discard, r)
		return nil, fmt.Errorf("write %s: %w", storage.FileName(level, minTXID, maxTXID), &os.PathError{Op: "write", Path: "/replica/ltx/0/x.tmp", Err: syscall.ENOSPC})
	}
	return d.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := &diskFull{Client: newReplica(t)}
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	mustSync(t, r)
	c.full.Store(true)
	insert(t, app, 50)
	err := r.Sync(ctx)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("sync on a full disk: got %v", err)
	}
	insert(t, app, 50)
	c.full.Store(false)
	mustSync(t, r)
	if got, _ := restoreDump(t, c, restore.Options{}); got != dump(t, app) {
		t.Fatal("restore differs from the source after the disk filled up")
	}
}

func TestRestoreBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	insert(t, app, 10)
	mustSync(t, r)

	dst := filepath.Join(dir, "out.db")
	if err := os.WriteFile(dst, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Run(ctx, c, dst, restore.Options{}); !errors.Is(err, restore.ErrDestinationExists) {
		t.Fatalf("restore over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "precious" {
		t.Fatal("the existing file was changed")
	}
	if _, err := restore.Run(ctx, c, dst, restore.Options{Force: true}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	if got := dumpFile(t, dst); got != dump(t, app) {
		t.Fatal("forced restore differs from the source")
	}
	if _, err := restore.Run(ctx, c, filepath.Join(dir, "a.db"), restore.Options{TXID: 99}); !errors.Is(err, plan.ErrTXIDNotFound) {
		t.Fatalf("restore of a TXID past the newest: %v", err)
	}
	if _, err := restore.Run(ctx, c, filepath.Join(dir, "b.db"), restore.Options{Time: time.Now().Add(-time.Hour)}); !errors.Is(err, plan.ErrTimeUnavailable) {
		t.Fatalf("restore at a time before the replica: %v", err)
	}
	if _, err := restore.Run(ctx, newReplica(t), filepath.Join(dir, "c.db"), restore.Options{}); !errors.Is(err, plan.ErrNoFiles) {
		t.Fatalf("restore of an empty replica: %v", err)
	}
	if _, err := restore.Run(ctx, c, filepath.Join(dir, "d.db"), restore.Options{TXID: 1, Time: time.Now()}); err == nil {
		t.Fatal("restore with a TXID and a time accepted")
	}
	if _, err := restore.Run(ctx, c, filepath.Join(dir, "no", "such", "dir.db"), restore.Options{}); err == nil {
		t.Fatal("restore into a missing directory accepted")
	}

	// A corrupted page in the replica fails the restore, and leaves no file.
	l0 := listLevel(t, c, 0)
	name := storage.FilePath(c.Root(), 0, l0[0].MinTXID, l0[0].MaxTXID)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[ltx.HeaderSize+40] ^= 0xff
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.db")
	if _, err := restore.Run(ctx, c, bad, restore.Options{}); err == nil {
		t.Fatal("restore from a corrupted replica succeeded")
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed restore left %s behind", bad)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".bad.db") {
			t.Fatalf("a failed restore left %s behind", e.Name())
		}
	}
}

// TestFaultyStorage runs the writer's loops against storage that fails 10%
// of requests, cuts bodies and uploads short and is sometimes slow: syncs,
// compactions, snapshots and retention fail and retry, no partial file
// becomes visible, and once the faults stop the replica catches up.
func TestFaultyStorage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	b := wrap.Behaviour{ErrorRate: 0.1, TruncateRate: 0.05, ShortRate: 0.05, SlowRate: 0.05, SlowDelay: 20 * time.Millisecond}
	faulty := wrap.NewFaulty(newReplica(t), wrap.Uniform(5, b))
	r := newReplicator(t, path, faulty, writer.Options{
		SyncInterval:        5 * time.Millisecond,
		MaxRetryInterval:    20 * time.Millisecond,
		CompactionIntervals: []time.Duration{30 * time.Millisecond, 90 * time.Millisecond},
		SnapshotInterval:    150 * time.Millisecond,
		L0Retention:         50 * time.Millisecond,
		SnapshotRetention:   200 * time.Millisecond,
		MinCheckpointPages:  30,
	})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		insert(t, app, 20)
		time.Sleep(3 * time.Millisecond)
	}
	faulty.SetFaults(false)
	var err error
	for i := 0; i < 50; i++ {
		if err = r.Sync(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("sync after the faults stopped: %v", err)
	}
	if faulty.Injected().Total() == 0 {
		t.Fatal("no fault injected")
	}
	t.Logf("faults injected: %+v; TXID %s", faulty.Injected(), r.TXID())
	if err := r.Close(ctx); err != nil { // stop retention before looking
		t.Fatal(err)
	}
	if got, _ := restoreDump(t, faulty, restore.Options{}); got != dump(t, app) {
		t.Fatal("restore differs from the source after the faults")
	}
	// Every file listed decodes whole: no partial file became visible.
	for level := 0; level <= storage.SnapshotLevel; level++ {
		for _, f := range listLevel(t, faulty, level) {
			rc, err := faulty.OpenLTXFile(ctx, level, f.MinTXID, f.MaxTXID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := ltx.NewDecoder(rc).Verify(); err != nil {
				t.Fatalf("%s: %v", storage.FileName(level, f.MinTXID, f.MaxTXID), err)
			}
			rc.Close()
		}
	}
}
