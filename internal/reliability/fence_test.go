package reliability

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/childwriter"
	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// fenceTarget is the replica of a fencing run.
type fenceTarget struct {
	url    string         // for the writer processes and the VFS
	client storage.Client // for the checks
	// leaseDir is where writer B takes its lease on a directory replica:
	// it runs as another host, whose lock the stopped writer's flock
	// does not reach. Empty on S3, where the lease lapses by its TTL.
	leaseDir string
}

// fenceOpts are the options of both writers: quick syncs and
// compactions, a one-second lease; no snapshot and no checkpoint of
// their own (a writer stopped inside one would hold SQLite's write lock
// and stall the application), and nothing pruned, so that every file
// written is still there to be checked at the end.
func fenceOpts(temp string) writer.Options {
	return writer.Options{
		SyncInterval:        20 * time.Millisecond,
		CompactionIntervals: []time.Duration{100 * time.Millisecond, 400 * time.Millisecond},
		SnapshotInterval:    -1,
		L0Retention:         time.Hour,
		MinCheckpointPages:  1 << 30,
		TruncatePages:       -1,
		CheckpointInterval:  -1,
		LeaseTTL:            time.Second,
		BusyTimeout:         2 * time.Second,
		TempDir:             temp,
	}
}

// TestFenceStaleWriter: writer A replicates under load and is stopped
// (SIGSTOP) in the middle of whatever it was doing; its lease lapses and
// writer B, another lease holder, takes the replica over and syncs; then
// A wakes (SIGCONT). No file B wrote is written over, no file holds two
// contents (every file in the replica is one a writer recorded writing,
// with the bytes it wrote), A exits with code 1 and one line saying that
// another writer writes the replica, and B goes on to replicate
// everything. A follower through the VFS sees the primary's rows at
// every TXID it sees, every TXID read pinned holds them, and a restore at
// every TXID is right. On a directory replica, versitygw and MinIO.
func TestFenceStaleWriter(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "replica")
		testFence(t, fenceTarget{url: dir, client: file.New(dir), leaseDir: t.TempDir()})
	})
	s3test.ForEach(t, func(t *testing.T, srv *s3test.Server) {
		srv.Setenv(t) // the writer processes and the VFS open the URL with the environment's credentials
		rep := srv.NewReplica(t)
		testFence(t, fenceTarget{url: rep.URL, client: rep.Client})
	})
}

func testFence(t *testing.T, tgt fenceTarget) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	path, temp := filepath.Join(dir, "app.db"), filepath.Join(dir, "tmp")
	if err := os.Mkdir(temp, 0o755); err != nil {
		t.Fatal(err)
	}
	m := newModel(seed)
	load := startAppLoad(t, path, m)

	a := childwriter.Start(t, childwriter.Config{DB: path, Replica: tgt.url, Options: fenceOpts(temp), Record: true})
	a.WaitReady(t)
	waitL0Writes(t, a, 3)
	follower := startFollower(t, tgt.url, m)
	waitL0Writes(t, a, 6)
	time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // stop it anywhere
	if err := a.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := newestL0(a.Writes(t))

	b := childwriter.Start(t, childwriter.Config{DB: path, Replica: tgt.url, Options: fenceOpts(temp), Record: true,
		LeaseDir: tgt.leaseDir, WaitLease: time.Minute})
	b.WaitReady(t)
	waitL0Writes(t, b, 5)
	if err := a.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("writer A runs on 30s after it woke behind writer B: %s", tail(a.Log(), 3000))
	}
	lines := strings.Split(strings.TrimSpace(a.Log()), "\n")
	if last := lines[len(lines)-1]; a.ExitCode() != 1 || !strings.Contains(last, writer.ErrReplicaConflict.Error()) {
		t.Fatalf("writer A exited with code %d, last line %q: want 1 and %q", a.ExitCode(), last, writer.ErrReplicaConflict)
	}
	waitL0Writes(t, b, len(b.Writes(t))+3) // B goes on

	load.halt()
	final := m.committed()
	waitReplicaHolds(t, tgt.client, m, final, b)
	if err := b.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-b.Exited()
	if b.ExitCode() != 0 {
		t.Fatalf("writer B exited with code %d after SIGTERM: %s", b.ExitCode(), tail(b.Log(), 3000))
	}
	reads := follower.stop(t)

	aWrites, bWrites := a.Writes(t), b.Writes(t)
	checkEveryFileWrittenOnce(t, tgt.client, aWrites, bWrites)
	kAt := checkEveryTXID(t, tgt, m, final)
	for txid, k := range reads.seen {
		if kAt[txid] != k {
			t.Fatalf("the follower read transaction %d at TXID %s, which holds %d", k, txid, kAt[txid])
		}
	}
	if reads.after <= stoppedAt {
		t.Fatalf("the follower never read past TXID %s, where writer A was stopped", stoppedAt)
	}
	t.Logf("writer A: %d files (L0 up to TXID %s when stopped), exited with %q; writer B: %d files; %d TXIDs, %d transactions, each TXID read pinned and restored; follower: %d reads, %d errors, up to TXID %s",
		len(aWrites), stoppedAt, lastLine(a.Log()), len(bWrites), len(kAt), final, reads.n, reads.errs, reads.after)
}

// waitL0Writes waits until c recorded n L0 files.
func waitL0Writes(t *testing.T, c *childwriter.Child, n int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := 0
		for _, w := range c.Writes(t) {
			if w.Level == 0 {
				got++
			}
		}
		switch {
		case got >= n:
			return
		case !c.Running():
			t.Fatalf("writer exited (code %d) after %d of %d L0 files: %s", c.ExitCode(), got, n, tail(c.Log(), 3000))
		case time.Now().After(deadline):
			t.Fatalf("writer wrote %d of %d L0 files in a minute: %s", got, n, tail(c.Log(), 3000))
		}
	}
}

func newestL0(ws []childwriter.Write) ltx.TXID {
	var newest ltx.TXID
	for _, w := range ws {
		if w.Level == 0 {
			newest = max(newest, w.MaxTXID)
		}
	}
	return newest
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// waitReplicaHolds waits until the replica's newest TXID restores to
// transaction k.
func waitReplicaHolds(t *testing.T, c storage.Client, m *model, k int64, w *childwriter.Child) {
	t.Helper()
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "probe.db")
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !w.Running() {
			t.Fatalf("writer B exited (code %d): %s", w.ExitCode(), tail(w.Log(), 3000))
		}
		_, err := restore.Run(ctx, c, dst, restore.Options{Force: true})
		if err == nil {
			var got int64
			var fp fingerprint
			if got, fp, err = fileState(ctx, dst); err == nil {
				if err := m.check(got, fp); err != nil {
					t.Fatalf("the newest TXID %v", err)
				}
				if got == k {
					return
				}
				err = fmt.Errorf("holds transaction %d, not yet %d", got, k)
			}
		}
		last = err
	}
	t.Fatalf("the replica never reached transaction %d: %v; writer B's log: %s", k, last, tail(w.Log(), 3000))
}

// checkEveryFileWrittenOnce: every file in the replica is one that a
// writer recorded writing, with the bytes it recorded, and no name was
// written by the two with different bytes.
func checkEveryFileWrittenOnce(t *testing.T, c storage.Client, a, b []childwriter.Write) {
	t.Helper()
	ctx := context.Background()
	sums := map[string]string{}
	who := map[string]string{}
	for _, ws := range []struct {
		name   string
		writes []childwriter.Write
	}{{"A", a}, {"B", b}} {
		for _, w := range ws.writes {
			if prev, ok := sums[w.String()]; ok && prev != w.Sum {
				t.Fatalf("%s was written by %s and by %s with different bytes", w, who[w.String()], ws.name)
			}
			sums[w.String()], who[w.String()] = w.Sum, ws.name
		}
	}
	infos, err := storage.ListAll(ctx, c, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		name := storage.FileName(info.Level, info.MinTXID, info.MaxTXID)
		want, ok := sums[name]
		if !ok {
			t.Fatalf("the replica holds %s, which no writer recorded writing", name)
		}
		rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != want {
			t.Fatalf("%s, written by %s, holds other bytes now: written over", name, who[name])
		}
	}
	if len(infos) != len(sums) {
		t.Fatalf("the writers recorded %d files, the replica holds %d (nothing is pruned in this test)", len(sums), len(infos))
	}
}

// checkEveryTXID reads every TXID pinned through the VFS and restores it:
// each holds the primary's rows after some transaction, never fewer than
// the TXID before, the same both ways, and the newest holds final. It
// returns the transaction each TXID holds.
func checkEveryTXID(t *testing.T, tgt fenceTarget, m *model, final int64) map[ltx.TXID]int64 {
	t.Helper()
	ctx := context.Background()
	l0, err := storage.ListLevel(ctx, tgt.client, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range l0 {
		if f.MinTXID != ltx.TXID(i+1) || f.MaxTXID != ltx.TXID(i+1) {
			t.Fatalf("L0 holds %s where TXID %d was expected: a gap or a duplicate", ltx.FormatFilename(f.MinTXID, f.MaxTXID), i+1)
		}
	}
	conn := openPinned(t, tgt.url)
	kAt := map[ltx.TXID]int64{}
	dst := filepath.Join(t.TempDir(), "restored.db")
	var prev int64
	for txid := ltx.TXID(1); txid <= ltx.TXID(len(l0)); txid++ {
		k, fp, err := readPinned(ctx, conn, txid)
		if err != nil {
			t.Fatalf("read TXID %s through the VFS: %v", txid, err)
		}
		if err := m.check(k, fp); err != nil {
			t.Fatalf("TXID %s read through the VFS %v", txid, err)
		}
		if k < prev {
			t.Fatalf("TXID %s holds transaction %d, the TXID before %d", txid, k, prev)
		}
		if _, err := restore.Run(ctx, tgt.client, dst, restore.Options{TXID: txid, Force: true}); err != nil {
			t.Fatalf("restore TXID %s: %v", txid, err)
		}
		rk, rfp, err := fileState(ctx, dst)
		if err != nil {
			t.Fatalf("restore TXID %s: %v", txid, err)
		}
		if rk != k || rfp != fp {
			t.Fatalf("TXID %s restores to transaction %d, the VFS reads %d there", txid, rk, k)
		}
		kAt[txid], prev = k, k
	}
	if prev != final {
		t.Fatalf("the newest TXID holds transaction %d; the primary committed %d", prev, final)
	}
	return kAt
}

// followerReads is what a follower read.
type followerReads struct {
	n, errs int
	seen    map[ltx.TXID]int64
	after   ltx.TXID // the newest TXID read
}

type follower struct {
	cancel context.CancelFunc
	done   chan struct{}
	reads  followerReads
	wrong  error
}

// startFollower reads the replica through the VFS, following it, until
// stopped: each read transaction's rows must be the primary's after the
// transaction they name.
func startFollower(t *testing.T, replicaURL string, m *model) *follower {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:fence.db?vfs=ltx&poll=20ms&replica="+url.QueryEscape(replicaURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel, done: make(chan struct{}), reads: followerReads{seen: map[ltx.TXID]int64{}}}
	var once sync.Once
	go func() {
		defer close(f.done)
		for ctx.Err() == nil {
			txid, k, fp, err := faultyRead(ctx, db, 0)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				f.reads.errs++
				once.Do(func() { t.Logf("follower: %v", err) })
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if err := m.check(k, fp); err != nil {
				f.wrong = fmt.Errorf("the follower read at TXID %s, which %w", txid, err)
				return
			}
			if prev, ok := f.reads.seen[txid]; ok && prev != k {
				f.wrong = fmt.Errorf("the follower read transaction %d at TXID %s, and %d before", k, txid, prev)
				return
			}
			f.reads.seen[txid] = k
			f.reads.n++
			f.reads.after = max(f.reads.after, txid)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return f
}

// stop stops the follower and fails the test if it read wrong rows.
func (f *follower) stop(t *testing.T) followerReads {
	t.Helper()
	f.cancel()
	<-f.done
	if f.wrong != nil {
		t.Fatal(f.wrong)
	}
	return f.reads
}
