package writer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/writer"
)

// elsewhere is the replica as a writer on another host sees it: the local
// lock that keeps this host's writers apart (the file backend's flock)
// does not reach it, as a lock on a network filesystem that a paused
// host lost does not.
type elsewhere struct{ storage.Client }

// TestStaleWriterFenced: writer A goes quiet holding its lease; writer B
// (another host) writes the next TXID. When A wakes with that TXID
// pending, its upload is refused rather than written over B's file: A
// stops with ErrReplicaConflict, in one line and one logged error, B's
// file stays as B wrote it, and nothing committed is lost: B replicates
// all of it from the WAL A kept.
func TestStaleWriterFenced(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 20)
	c := newReplica(t)
	var logs bytes.Buffer
	optsA := testOpts()
	optsA.SyncInterval = 10 * time.Millisecond
	optsA.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	a := newReplicator(t, path, c, optsA)
	defer a.Close(ctx)
	mustSync(t, a)
	txid := a.TXID()

	insert(t, app, 5)
	b := newReplicator(t, path, elsewhere{c}, testOpts())
	defer b.Close(ctx)
	mustSync(t, b)
	if b.TXID() != txid+1 {
		t.Fatalf("writer B at TXID %s, want %s", b.TXID(), txid+1)
	}
	theirs := storagetest.ReadFile(t, c, 0, txid+1, txid+1)

	// A wakes: its next sync has TXID txid+1 to write, with other bytes.
	insert(t, app, 5)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("writer A goes on after B wrote the TXID it was about to write")
	}
	err := a.Err()
	if !errors.Is(err, writer.ErrReplicaConflict) || !errors.Is(err, storage.ErrFileExists) {
		t.Fatalf("writer A stopped with %v, want ErrReplicaConflict from a refused create", err)
	}
	name := storage.FileName(0, txid+1, txid+1)
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, name) || !strings.Contains(msg, "WAL keeps") {
		t.Fatalf("writer A's error %q: want one line naming %s and saying that the WAL keeps the rest", msg, name)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("writer A logged %d errors, want 1:\n%s", n, logs.String())
	}
	if got := storagetest.ReadFile(t, c, 0, txid+1, txid+1); !bytes.Equal(got, theirs) {
		t.Fatalf("%s, written by B, was written over by A", name)
	}
	if err := a.Close(ctx); !errors.Is(err, writer.ErrReplicaConflict) && err != nil {
		t.Fatalf("close A: %v", err)
	}

	// Nothing is lost: B copies what A could not.
	mustSync(t, b)
	checkRestores(t, c, app, "the replica lost what the fenced writer left in the WAL")
}

// TestSnapshotSameTXIDSameBytes: a snapshot at a TXID the replica has a
// snapshot of already writes nothing (a writer without checksums keeps
// the one with them); one written again at that TXID (after the first was
// removed), by the same writer or by one restarted, has the very same
// bytes, so that a create that finds it in place (an upload retried after
// it landed) is a success.
func TestSnapshotSameTXIDSameBytes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 200)
	c := newReplica(t)
	opts := testOpts()
	opts.Checksums = true
	r := newReplicator(t, path, c, opts)
	defer r.Close(ctx)
	mustSync(t, r)
	// An application reader keeps the writer's checkpoints from the end
	// of the WAL, so that they add no TXID of their own (the sequence
	// write after a full checkpoint): snapshots then stay at one TXID.
	reader, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	defer reader.ExecContext(ctx, `ROLLBACK`)
	insert(t, app, 20)
	first, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := storagetest.ReadFile(t, c, first.Level, first.MinTXID, first.MaxTXID)
	again, err := r.Snapshot(ctx)
	if err != nil || again.MaxTXID != first.MaxTXID || again.Size != first.Size {
		t.Fatalf("a second snapshot with nothing committed since TXID %s: %+v, %v; want the first", first.MaxTXID, again, err)
	}
	if files := listLevel(t, c, storage.SnapshotLevel); len(files) != 1 {
		t.Fatalf("L9 holds %d files, want 1", len(files))
	}
	rewrite := func(r *writer.Replicator, who string) {
		t.Helper()
		if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{first}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Snapshot(ctx); err != nil {
			t.Fatalf("snapshot by %s: %v", who, err)
		}
		if got := storagetest.ReadFile(t, c, first.Level, first.MinTXID, first.MaxTXID); !bytes.Equal(got, want) {
			t.Fatalf("the snapshot at TXID %s written again by %s has other bytes", first.MaxTXID, who)
		}
	}
	rewrite(r, "the same writer")
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := newReplicator(t, path, c, opts)
	defer r2.Close(ctx)
	mustSync(t, r2)
	if r2.TXID() != first.MaxTXID {
		t.Fatalf("the restarted writer is at TXID %s, want %s", r2.TXID(), first.MaxTXID)
	}
	rewrite(r2, "a restarted writer")
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A writer restarted without checksums would encode that TXID with
	// other flags: the snapshot there is the same database, and stays.
	r3 := newReplicator(t, path, c, testOpts())
	defer r3.Close(ctx)
	if info, err := r3.Snapshot(ctx); err != nil || info.MaxTXID != first.MaxTXID {
		t.Fatalf("snapshot without checksums at TXID %s, which has one with: %+v, %v; want the one there", first.MaxTXID, info, err)
	}
	if got := storagetest.ReadFile(t, c, first.Level, first.MinTXID, first.MaxTXID); !bytes.Equal(got, want) {
		t.Fatal("the snapshot was written over")
	}
}

// noConditions is storage that cannot write conditionally: its lease
// says so, as the s3 backend's does on a server that refuses or ignores
// If-None-Match.
type noConditions struct{ storage.Client }

func (noConditions) AcquireLease(context.Context, lease.Holder, time.Duration) (lease.Lease, error) {
	return nil, fmt.Errorf("lease: the server ignores If-None-Match: %w: %w", storage.ErrNoConditionalWrites, errors.ErrUnsupported)
}

// TestRefusesStorageWithoutConditionalWrites: a writer does not start on
// storage that cannot fence a stale writer, and says why and what to do;
// with AllowUnfenced it starts, warning that it runs without a fence.
func TestRefusesStorageWithoutConditionalWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	insert(t, app, 20)
	c := noConditions{newReplica(t)}
	r := newReplicator(t, path, c, testOpts())
	err := r.Sync(ctx)
	if !errors.Is(err, storage.ErrNoConditionalWrites) || !strings.Contains(err.Error(), "AllowUnfenced") || !strings.Contains(err.Error(), "refusing to replicate") {
		t.Fatalf("sync on storage without conditional writes: %v, want a refusal naming AllowUnfenced", err)
	}
	r.Close(ctx)
	if n := len(listLevel(t, c, 0)); n != 0 {
		t.Fatalf("the refused writer wrote %d files", n)
	}

	var logs bytes.Buffer
	opts := testOpts()
	opts.AllowUnfenced = true
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r = newReplicator(t, path, c, opts)
	defer r.Close(ctx)
	mustSync(t, r)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "WITHOUT A FENCE") {
		t.Fatalf("log %q: want a warning that the writer runs without a fence", logs.String())
	}
	checkRestores(t, c, app, "the unfenced writer's replica differs from the source")
}
