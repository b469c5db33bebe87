package writer_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// checkpoint is what the source looked like right after the replica caught
// up with it.
type recorded struct {
	txid ltx.TXID
	at   time.Time
	dump string
}

// appLoad writes to the database until stopped, in transactions of varying
// size, with updates and deletes; pause holds it between transactions.
type appLoad struct {
	db    *sql.DB
	pause sync.Mutex
	stop  chan struct{}
	done  chan error
}

func startLoad(t *testing.T, db *sql.DB, seed uint64) *appLoad {
	l := &appLoad{db: db, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		rng := rand.New(rand.NewPCG(seed, seed))
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				l.done <- nil
				return
			default:
			}
			l.pause.Lock()
			err := l.txn(rng, i)
			l.pause.Unlock()
			if err != nil {
				l.done <- err
				return
			}
		}
	}()
	t.Cleanup(func() { l.halt(t) })
	return l
}

func (l *appLoad) txn(rng *rand.Rand, i int) error {
	tx, err := l.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for j := 0; j < 1+rng.IntN(20); j++ {
		switch rng.IntN(10) {
		case 0:
			_, err = tx.Exec(`DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT 3)`)
		case 1, 2:
			_, err = tx.Exec(`UPDATE t SET n = n + 1, v = v || 'u' WHERE id % 7 = ?`, rng.IntN(7))
		default:
			_, err = tx.Exec(`INSERT INTO t (v, n) VALUES (?, ?)`, fmt.Sprintf("%d-%d-%x", i, j, rng.Uint64()), rng.IntN(1000))
		}
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (l *appLoad) halt(t *testing.T) {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	if err := <-l.done; err != nil {
		t.Errorf("application load: %v", err)
	}
}

// appCheckpoints runs the application's own checkpoints, every mode in
// turn, on a connection of its own with a short busy timeout.
func appCheckpoints(t *testing.T, path string, stop <-chan struct{}) (counts map[string]int, wait func()) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(20)")
	if err != nil {
		t.Fatal(err)
	}
	counts = map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer db.Close()
		modes := []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			mode := modes[i%len(modes)]
			var busy, log, ckpt int
			if err := db.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &ckpt); err != nil {
				continue // SQLITE_BUSY from the busy handler
			}
			mu.Lock()
			if busy == 0 {
				counts[mode]++
			}
			mu.Unlock()
		}
	}()
	return counts, func() { wg.Wait() }
}

// TestConcurrentLoadWithAppCheckpoints replicates a database under a write
// load while the application checkpoints in every mode and the writer
// syncs, checkpoints (PASSIVE and TRUNCATE), compacts and snapshots; every
// recorded TXID and time restores to what the source held then.
func TestConcurrentLoadWithAppCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app := openApp(t, path)
	c := newReplica(t)
	opts := testOpts()
	opts.SyncInterval = 5 * time.Millisecond
	opts.MinCheckpointPages = 40
	opts.TruncatePages = 120
	opts.CompactionIntervals = []time.Duration{-1, -1}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	r := newReplicator(t, path, c, opts)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)

	load := startLoad(t, app, 1)
	stop := make(chan struct{})
	counts, waitCkpt := appCheckpoints(t, path, stop)

	var recs []recorded
	deadline := time.Now().Add(2 * time.Second)
	// At least one round of ten, whatever the machine's speed: the last
	// steps of a round compact into L2 and snapshot.
	for i := 0; time.Now().Before(deadline) || i < 10; i++ {
		time.Sleep(time.Duration(20+i%30) * time.Millisecond)
		load.pause.Lock()
		mustSync(t, r)
		recs = append(recs, recorded{txid: r.TXID(), at: time.Now(), dump: dump(t, app)})
		time.Sleep(2 * time.Millisecond) // the next file gets a later timestamp
		load.pause.Unlock()
		switch i % 10 {
		case 3:
			if _, err := r.Compact(ctx, 1); err != nil {
				t.Fatal(err)
			}
		case 6:
			if _, err := r.Compact(ctx, 2); err != nil {
				t.Fatal(err)
			}
		case 8:
			if _, err := r.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	waitCkpt()
	load.halt(t)
	mustSync(t, r)
	final := recorded{txid: r.TXID(), dump: dump(t, app)}
	t.Logf("%d TXIDs, %d recorded points; application checkpoints that succeeded: %v", final.txid, len(recs), counts)

	checkContiguous(t, c, 1)
	if n := metric(t, reg, "ltx_writer_l0_snapshots_total"); n != 1 {
		t.Errorf("%v L0 files held the whole database; want 1 (the first): continuity with the WAL was lost", n)
	}
	if n := metric(t, reg, "ltx_writer_wal_continuity_lost_total"); n != 0 {
		t.Errorf("WAL continuity lost %v times under the application's checkpoints, want never", n)
	}
	if n := metric(t, reg, "ltx_writer_checkpoints_total", "mode", "PASSIVE"); n == 0 {
		t.Errorf("the writer never checkpointed")
	}
	for _, level := range []int{1, 2, 9} {
		if len(listLevel(t, c, level)) == 0 {
			t.Errorf("no L%d file written", level)
		}
	}
	if got, res := restoreDump(t, c, restore.Options{}); got != final.dump {
		t.Fatalf("restore of the newest TXID %s differs from the source", res.TXID)
	}
	for _, rec := range recs {
		if got, _ := restoreDump(t, c, restore.Options{TXID: rec.txid}); got != rec.dump {
			t.Fatalf("restore of TXID %s differs from the source then", rec.txid)
		}
		if got, res := restoreDump(t, c, restore.Options{Time: rec.at}); got != rec.dump {
			t.Fatalf("restore at %s (TXID %s, recorded TXID %s) differs from the source then", rec.at.Format(time.RFC3339Nano), res.TXID, rec.txid)
		}
	}
}
