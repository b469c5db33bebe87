package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/childwriter"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// point is a TXID the replica was seen to reach, and the source then.
type point struct {
	txid ltx.TXID
	k    int64     // the last transaction committed
	at   time.Time // while the source held exactly k, after txid was uploaded
}

// crashRun is the state of one crash loop.
type crashRun struct {
	t          *testing.T
	ctx        context.Context
	path       string // the source database
	replicaDir string
	temp       string
	client     storage.Client
	m          *model
	load       *appLoad

	points   []point
	seen     map[ltx.TXID]ltx.FileInfo // every L0 file as first listed
	verified ltx.TXID                  // TXIDs 1..verified were read through the VFS
	lastK    int64                     // the transaction TXID verified holds
	reader   *sql.Conn                 // a VFS connection, pinned TXID after TXID
	restores int
}

// TestCrashLoop kills the writer process with SIGKILL at seeded random
// moments under a write load with the application's own checkpoints, and
// now and then a clean application restart while no writer runs (the WAL
// checkpointed and deleted). After each kill: L0 holds TXIDs 1..n, one
// file each, none ever rewritten; every TXID, read through the VFS, holds
// exactly the source's rows after some transaction, never fewer than the
// TXID before; every point the replica was seen to reach restores, by TXID
// and by time, to exactly the source state then, with integrity_check ok.
// In the end a last writer catches up and the newest TXID is the source.
func TestCrashLoop(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	run := &crashRun{
		t:          t,
		ctx:        context.Background(),
		path:       filepath.Join(dir, "app.db"),
		replicaDir: filepath.Join(dir, "replica"),
		temp:       filepath.Join(dir, "tmp"),
		m:          newModel(seed),
		seen:       map[ltx.TXID]ltx.FileInfo{},
	}
	if err := os.Mkdir(run.temp, 0o755); err != nil {
		t.Fatal(err)
	}
	run.client = file.New(run.replicaDir)
	run.load = startAppLoad(t, run.path, run.m)

	iterations := *crashIterations
	var killedStarting, quickRestarts, appRestarts, walDeleted int
	var safePaths []string
	var tied, afterAppRestart, tiedAfterAppRestart int
	appRestarted := false
	paused := false // the test holds the load (run.load.pause)
	for i := range iterations {
		c := startChild(t, run.path, run.replicaDir, run.temp)
		mode := rng.IntN(8)
		if mode == 0 {
			// Kill it while it opens, takes the lease and resumes.
			c.WaitStarting(t)
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			killedStarting++
		} else {
			c.WaitReady(t)
		}
		if paused {
			// Let the writer resume before the load goes on.
			time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
			run.load.pause.Unlock()
			paused = false
		}
		switch {
		case mode == 0:
		case mode <= 2:
			// A clean application restart after the writer caught up
			// and was killed: the WAL goes, and the next writer must
			// tie the database to the replica without it (through the
			// position file, as the files carry no checksum).
			run.recordPoint(c, true)
			paused = true
		case mode <= 4:
			run.recordPoint(c, false)
		}
		if !paused {
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		}
		if !c.Running() {
			t.Fatalf("iteration %d: the writer stopped by itself (exit code %d): %s", i, c.ExitCode(), tail(c.Log(), 3000))
		}
		if !paused && rng.IntN(3) == 0 {
			// A quick restart: the load waits for the next writer, so
			// that the WAL is still the one the replica was copied from.
			run.load.pause.Lock()
			paused = true
			quickRestarts++
		}
		c.Kill()
		safePaths = append(safePaths, snapshotsL0(c.Log())...)
		tied += tiedWithoutWAL(c.Log())
		if appRestarted && mode != 0 {
			afterAppRestart++
			tiedAfterAppRestart += min(1, tiedWithoutWAL(c.Log()))
		}
		run.check(fmt.Sprintf("after kill %d", i+1))
		appRestarted = mode == 1 || mode == 2
		if appRestarted {
			appRestarts++
			if run.load.restartAppLocked() {
				walDeleted++
			}
		}
	}
	if paused {
		run.load.pause.Unlock()
	}

	// A last writer, in this process, catches up with everything.
	opts := childOpts(run.temp, nil)
	opts.SyncInterval, opts.SnapshotInterval, opts.CompactionIntervals = -1, -1, []time.Duration{-1, -1}
	r, err := writer.New(run.path, run.client, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(run.ctx)
	if err := r.Sync(run.ctx); err != nil {
		t.Fatal(err)
	}
	// The writers killed mid-upload left temp files; the writer that
	// holds the lease now has removed them.
	if temps, _ := filepath.Glob(filepath.Join(run.replicaDir, "ltx", "*", ".*.tmp")); len(temps) > 0 {
		t.Errorf("%d temp files of killed writers' uploads left in the replica: %v", len(temps), temps)
	}
	run.load.halt()
	if err := r.Sync(run.ctx); err != nil {
		t.Fatal(err)
	}
	final := run.m.committed()
	run.check("at the end")
	if run.lastK != final {
		t.Fatalf("the newest TXID %s holds transaction %d; the source committed %d", run.verified, run.lastK, final)
	}
	// The model is the source: the source database agrees.
	run.load.pause.Lock()
	k, fp, err := readState(run.ctx, run.load.db)
	run.load.pause.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.m.check(k, fp); err != nil || k != final {
		t.Fatalf("the source itself disagrees with the model (transaction %d of %d): %v", k, final, err)
	}
	res := run.restoreCheck(restore.Options{}, final, "the newest TXID")
	for _, p := range run.points {
		run.restoreCheck(restore.Options{TXID: p.txid}, p.k, fmt.Sprintf("TXID %s", p.txid))
		run.restoreCheck(restore.Options{Time: p.at}, p.k, fmt.Sprintf("the time of TXID %s (%s)", p.txid, p.at.Format(time.RFC3339Nano)))
	}
	t.Logf("%d kills survived (%d while the writer started, %d followed by a restart before the next transaction), %d TXIDs, %d transactions, %d points recorded and restored by TXID and time, %d restores in all",
		iterations, killedStarting, quickRestarts, res.TXID, final, len(run.points), run.restores)
	t.Logf("clean application restarts while no writer ran: %d (WAL deleted: %d); application checkpoints that succeeded: %v",
		appRestarts, walDeleted, run.load.checkpoints)
	t.Logf("whole-database L0 files after a restart: %d %v; database tied to the replica by its checksum, the WAL position lost: %d times (after %d of %d clean application restarts)",
		len(safePaths), countReasons(safePaths), tied, tiedAfterAppRestart, afterAppRestart)
}

// recordPoint holds the load, waits until the replica's newest TXID holds
// the last committed transaction, and records that point. With keep, the
// load stays held (run.load.pause locked) when it returns.
func (run *crashRun) recordPoint(c *childwriter.Child, keep bool) {
	t := run.t
	run.load.pause.Lock()
	if !keep {
		defer run.load.pause.Unlock()
	}
	k := run.m.committed()
	dst := filepath.Join(run.temp, "probe.db")
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if !c.Running() {
			t.Fatalf("the writer stopped by itself (exit code %d): %s", c.ExitCode(), tail(c.Log(), 3000))
		}
		res, err := restore.Run(run.ctx, run.client, dst, restore.Options{Force: true})
		run.restores++
		if err == nil {
			var got int64
			var fp fingerprint
			got, fp, err = fileState(run.ctx, dst)
			if err == nil {
				if err := run.m.check(got, fp); err != nil {
					t.Fatalf("the newest TXID %s %v", res.TXID, err)
				}
				if got == k {
					run.points = append(run.points, point{txid: res.TXID, k: k, at: time.Now()})
					// Files of later transactions get a later timestamp.
					time.Sleep(2 * time.Millisecond)
					return
				}
				err = fmt.Errorf("TXID %s holds transaction %d, not yet %d", res.TXID, got, k)
			}
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the replica never reached transaction %d, committed a minute ago: %v; writer log: %s", k, last, tail(c.Log(), 3000))
}

// check runs the checks due after each kill: L0 contiguous and never
// rewritten, and every TXID not yet read correct and not behind the one
// before.
func (run *crashRun) check(when string) {
	t := run.t
	infos, err := storage.ListLevel(run.ctx, run.client, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	next := ltx.TXID(1)
	for _, f := range infos {
		if f.MinTXID != next || f.MaxTXID != next {
			t.Fatalf("%s: L0 holds %s where TXID %s was expected: a gap or a duplicate", when, ltx.FormatFilename(f.MinTXID, f.MaxTXID), next)
		}
		if old, ok := run.seen[f.MaxTXID]; ok && (old.Size != f.Size || !old.CreatedAt.Equal(f.CreatedAt)) {
			t.Fatalf("%s: L0 file of TXID %s was rewritten (%d bytes at %s, then %d bytes at %s): a duplicate TXID",
				when, f.MaxTXID, old.Size, old.CreatedAt.Format(time.RFC3339Nano), f.Size, f.CreatedAt.Format(time.RFC3339Nano))
		}
		run.seen[f.MaxTXID] = *f
		next++
	}
	newest := next - 1
	for _, p := range run.points {
		if p.txid > newest {
			t.Fatalf("%s: TXID %s, which the replica had reached, is gone (newest %s)", when, p.txid, newest)
		}
	}
	if run.reader == nil && newest > 0 {
		run.reader = openPinned(t, run.replicaDir)
	}
	for txid := run.verified + 1; txid <= newest; txid++ {
		k, fp, err := readPinned(run.ctx, run.reader, txid)
		if err != nil {
			t.Fatalf("%s: read TXID %s through the VFS: %v", when, txid, err)
		}
		if err := run.m.check(k, fp); err != nil {
			t.Fatalf("%s: TXID %s %v", when, txid, err)
		}
		if k < run.lastK {
			t.Fatalf("%s: TXID %s holds transaction %d, TXID %s held %d: acknowledged transactions were lost", when, txid, k, txid-1, run.lastK)
		}
		for _, p := range run.points {
			if p.txid == txid && p.k != k {
				t.Fatalf("%s: TXID %s holds transaction %d; when it was reached it held %d", when, txid, k, p.k)
			}
		}
		run.verified, run.lastK = txid, k
	}
}

// restoreCheck restores with opts and compares with the model after
// transaction k.
func (run *crashRun) restoreCheck(opts restore.Options, k int64, what string) *restore.Result {
	t := run.t
	opts.Force = true
	dst := filepath.Join(run.temp, "restored.db")
	res, err := restore.Run(run.ctx, run.client, dst, opts)
	run.restores++
	if err != nil {
		t.Fatalf("restore %s: %v", what, err)
	}
	got, fp, err := fileState(run.ctx, dst)
	if err != nil {
		t.Fatalf("restore %s: %v", what, err)
	}
	if got != k {
		t.Fatalf("restore %s gives TXID %s holding transaction %d; the source held %d then", what, res.TXID, got, k)
	}
	if err := run.m.check(got, fp); err != nil {
		t.Fatalf("restore %s gives TXID %s which %v", what, res.TXID, err)
	}
	return res
}

// openPinned opens a connection to the replica through the ltx VFS, to be
// pinned TXID after TXID.
func openPinned(t *testing.T, replicaDir string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:crash.db?vfs=ltx&txid=1&replica="+url.QueryEscape(replicaDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readPinned pins conn at txid and reads the state there.
func readPinned(ctx context.Context, conn *sql.Conn, txid ltx.TXID) (int64, fingerprint, error) {
	var got string
	if err := conn.QueryRowContext(ctx, fmt.Sprintf("PRAGMA ltx_txid = %d", txid)).Scan(&got); err != nil {
		return 0, fingerprint{}, err
	}
	if got != fmt.Sprint(uint64(txid)) {
		return 0, fingerprint{}, fmt.Errorf("PRAGMA ltx_txid = %d gave %s", txid, got)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fingerprint{}, err
	}
	defer tx.Rollback()
	return readState(ctx, tx)
}

func countReasons(reasons []string) map[string]int {
	m := map[string]int{}
	for _, r := range reasons {
		m[r]++
	}
	return m
}
