package writer_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

func TestMain(m *testing.M) {
	childwriter.Main()
	os.Exit(s3test.Run(m))
}

// crashOpts make a child writer that syncs, checkpoints, compacts and
// snapshots often, so that a kill lands in the middle of each; temp holds
// its spooled files.
func crashOpts(temp string) writer.Options {
	return writer.Options{
		SyncInterval:        10 * time.Millisecond,
		MinCheckpointPages:  30,
		TruncatePages:       100,
		CheckpointInterval:  100 * time.Millisecond,
		CompactionIntervals: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond},
		SnapshotInterval:    300 * time.Millisecond,
		BusyTimeout:         2 * time.Second,
		TempDir:             temp,
	}
}

// settledTXID waits, the source's load paused, until the replica holds
// exactly what the source holds, and returns the TXID where it does. (The
// newest TXID standing still proves nothing: a writer just started may not
// have synced yet, and the writer's own checkpoints add TXIDs, which hold
// the same rows.)
func settledTXID(t *testing.T, c storage.Client, app *sql.DB) (ltx.TXID, error) {
	t.Helper()
	want := dump(t, app)
	var tried ltx.TXID
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var newest ltx.TXID
		for _, f := range listLevel(t, c, 0) {
			newest = max(newest, f.MaxTXID)
		}
		if newest == tried {
			continue
		}
		dst := filepath.Join(t.TempDir(), "settled.db")
		if _, err := restore.Run(context.Background(), c, dst, restore.Options{TXID: newest}); err != nil {
			continue // compaction or retention moved files meanwhile: look again
		}
		tried = newest
		if dumpFile(t, dst) == want {
			return newest, nil
		}
	}
	return 0, fmt.Errorf("the replica did not reach the source's rows (last TXID tried: %s)", tried)
}

// TestKill9 kills the writer process with SIGKILL at random moments under
// a write load, and restarts it: TXIDs stay contiguous, every TXID the
// replica reached restores to what the source held then, and in the end
// nothing committed is missing.
func TestKill9(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	replicaDir := filepath.Join(dir, "replica")
	temp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(temp, 0o755); err != nil {
		t.Fatal(err)
	}
	app := openApp(t, path)
	insert(t, app, 100)
	c := file.New(replicaDir)
	load := startLoad(t, app, 7)
	rng := rand.New(rand.NewPCG(7, 7))

	var recs []recorded
	const kills = 5
	for i := 0; i < kills; i++ {
		child := childwriter.Start(t, childwriter.Config{DB: path, Replica: replicaDir, Options: crashOpts(temp)})
		child.WaitReady(t)
		if i%2 == 1 {
			// Record a point the replica reached: hold the load and wait
			// for the child to copy everything.
			load.pause.Lock()
			txid, err := settledTXID(t, c, app)
			if err == nil {
				recs = append(recs, recorded{txid: txid, dump: dump(t, app)})
			}
			load.pause.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		child.Kill()
		checkContiguous(t, c, 1)
	}

	// A last writer in this process catches up with everything.
	r := newReplicator(t, path, c, testOpts())
	defer r.Close(ctx)
	mustSync(t, r)
	load.halt(t)
	mustSync(t, r)
	l0 := checkContiguous(t, c, 1)
	t.Logf("%d kills, %d TXIDs, %d points recorded", kills, len(l0), len(recs))
	if got, _ := restoreDump(t, c, restore.Options{}); got != dump(t, app) {
		t.Fatal("the final restore differs from the source: committed transactions were lost")
	}
	for _, rec := range recs {
		if got, _ := restoreDump(t, c, restore.Options{TXID: rec.txid}); got != rec.dump {
			t.Fatalf("TXID %s, which the replica had reached, restores to something else", rec.txid)
		}
	}
	// Every TXID restores to a sound database (Restore checks the
	// checksum and runs integrity_check).
	for txid := ltx.TXID(1); txid <= r.TXID(); txid += max(1, r.TXID()/10) {
		restoreDump(t, c, restore.Options{TXID: txid})
	}
}
