package writer_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/s3test"
	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/writer"
)

// The crash test runs the writer in a child process: this test binary,
// started again with these variables set.
const (
	envChild   = "LTX_WRITER_TEST_CHILD"
	envDB      = "LTX_WRITER_TEST_DB"
	envReplica = "LTX_WRITER_TEST_REPLICA"
	envTemp    = "LTX_WRITER_TEST_TEMP"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(runChildWriter())
	}
	os.Exit(s3test.Run(m))
}

// crashOpts make a child writer that syncs, checkpoints, compacts and
// snapshots often, so that a kill lands in the middle of each.
func crashOpts() writer.Options {
	return writer.Options{
		SyncInterval:        10 * time.Millisecond,
		MinCheckpointPages:  30,
		TruncatePages:       100,
		CheckpointInterval:  100 * time.Millisecond,
		CompactionIntervals: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond},
		SnapshotInterval:    300 * time.Millisecond,
		BusyTimeout:         2 * time.Second,
		TempDir:             os.Getenv(envTemp),
	}
}

func runChildWriter() int {
	r, err := writer.New(os.Getenv(envDB), file.New(os.Getenv(envReplica)), crashOpts())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := r.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	<-r.Done()
	fmt.Fprintln(os.Stderr, "child writer stopped:", r.Err())
	return 1
}

// startChild starts a writer process and waits until it has opened the
// database.
func startChild(t *testing.T, db, replica, temp string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envDB+"="+db, envReplica+"="+replica, envTemp+"="+temp)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(out)
		ok := s.Scan() && s.Text() == "ready"
		ready <- ok
		for s.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child writer failed to start: %s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child writer did not start: %s", stderr.String())
	}
	return cmd
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
		cmd := startChild(t, path, replicaDir, temp)
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
				cmd.Process.Kill()
				t.Fatal(err)
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
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
