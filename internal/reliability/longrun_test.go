package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/vfs"
	"github.com/ltxvfs/ltxvfs/writer"
)

// Tolerances of the long run. The page cache is left out of the heap (it
// fills up to its budget as new TXIDs bring new page versions, and has a
// check of its own); the rest may vary by what is in flight at the moment
// it is measured (a listing, a compaction's buffers, a snapshot of the
// database, about 1 MiB here), and goroutines by the requests and timers
// in flight. Growth beyond these is a leak: an index version, a file's
// page index or a goroutine kept for every poll or connection would pass
// them within the minute.
const (
	heapSlackBytes  = 3 << 20
	heapSlackFactor = 1.25
	goroutineSlack  = 10
)

// memSample is the process's live heap and goroutines at one moment.
type memSample struct {
	at         time.Duration
	heap       uint64 // HeapAlloc after a full GC
	cache      uint64 // of which the page cache holds
	goroutines int
}

// net is the heap besides the page cache.
func (s memSample) net() uint64 { return s.heap - min(s.cache, s.heap) }

// sampleMem measures five times over half a second and keeps the least of
// each figure: what a request, a compaction or a snapshot holds for a
// moment comes and goes; what leaks raises the floor.
func sampleMem(t *testing.T, start time.Time, reg *prometheus.Registry) memSample {
	var least memSample
	for i := range 5 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		runtime.GC()
		runtime.GC() // the second collects what the first's finalizers freed
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := memSample{
			heap:       ms.HeapAlloc,
			cache:      uint64(gaugeValue(t, reg, "ltxvfs_cache_bytes")),
			goroutines: runtime.NumGoroutine(),
		}
		if i == 0 || s.net() < least.net() {
			least.heap, least.cache = s.heap, s.cache
		}
		if i == 0 || s.goroutines < least.goroutines {
			least.goroutines = s.goroutines
		}
	}
	least.at = time.Since(start).Round(time.Second)
	return least
}

func (s memSample) String() string {
	return fmt.Sprintf("%v: heap %.1f MiB (%.1f MiB besides the page cache), %d goroutines", s.at, mib(s.heap), mib(s.net()), s.goroutines)
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// TestLongFollowBoundedMemory runs a writer at 10 syncs a second, with
// compactions, snapshots and retention, into a file replica, and a
// follower (the ltx VFS, poll=100ms) reading it all along, with
// connections opened and closed and some pinned at older TXIDs: after
// warm-up, the process's live heap and goroutine count must not grow
// (index versions released, the page cache within its budget, no
// goroutine left behind by a poll, a connection or a request). The rows
// read must be the primary's at some TXID (sums that add up).
func TestLongFollowBoundedMemory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	replicaDir := filepath.Join(dir, "replica")
	app, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	// A bounded table: rows are replaced, never accumulated, so that the
	// source's size says nothing about the follower's memory. total
	// stays 0: every transaction moves an amount between two rows.
	const rows = 2000
	if _, err := app.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, pad BLOB NOT NULL);
		INSERT INTO t(id, n, pad) SELECT value, 0, randomblob(200) FROM generate_series(1, 2000)`); err != nil {
		t.Fatal(err)
	}

	opts := writer.Options{
		SyncInterval:        100 * time.Millisecond,
		CompactionIntervals: []time.Duration{time.Second, 5 * time.Second, 15 * time.Second},
		SnapshotInterval:    10 * time.Second,
		SnapshotRetention:   20 * time.Second,
		L0Retention:         2 * time.Second,
		MinCheckpointPages:  200,
		CheckpointInterval:  2 * time.Second,
		BusyTimeout:         5 * time.Second,
		Logger:              busyWriterOpts().Logger,
	}
	r, err := writer.New(path, file.New(replicaDir), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	const cacheBudget = 4 << 20
	reg := prometheus.NewRegistry()
	name := "longfollow.db"
	if err := vfs.Attach(name, vfs.Options{URL: replicaDir, Poll: 100 * time.Millisecond, CacheBytes: cacheBudget, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	defer vfs.Detach(name)
	follow, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
	if err != nil {
		t.Fatal(err)
	}
	defer follow.Close()
	follow.SetMaxOpenConns(3)
	follow.SetConnMaxLifetime(2 * time.Second) // connections come and go

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var txns, reads, pinnedReads atomic.Int64
	var readErrs errorKinds
	failures := make(chan error, 10)
	fail := func(err error) {
		select {
		case failures <- err:
		default:
		}
	}
	// The load: 20 transactions a second.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for runCtx.Err() == nil {
			a, b, amt := 1+rng.IntN(rows), 1+rng.IntN(rows), rng.IntN(100)
			if err := transfer(app, a, b, amt); err != nil {
				fail(fmt.Errorf("load: %w", err))
				return
			}
			txns.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	})
	check := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) error {
		var count, sum int64
		if err := q.QueryRowContext(runCtx, `SELECT count(*), sum(n) FROM t`).Scan(&count, &sum); err != nil {
			return err
		}
		if count != rows || sum != 0 {
			return fmt.Errorf("%w: %d rows summing to %d, want %d rows summing to 0", errViolation, count, sum, rows)
		}
		return nil
	}
	// Followers.
	for range 2 {
		wg.Go(func() {
			for runCtx.Err() == nil {
				if err := check(follow); err != nil {
					if runCtx.Err() != nil {
						return
					}
					if errors.Is(err, errViolation) {
						fail(err)
						return
					}
					readErrs.add(err)
				}
				reads.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// A pinned connection now and then, at the TXID a follower just saw,
	// held for a few reads.
	wg.Go(func() {
		for runCtx.Err() == nil {
			conn, err := follow.Conn(runCtx)
			if err != nil {
				continue
			}
			var txid string
			err = conn.QueryRowContext(runCtx, `PRAGMA ltx_txid`).Scan(&txid)
			if err == nil {
				_, err = conn.ExecContext(runCtx, `PRAGMA ltx_txid = `+txid)
			}
			for i := 0; i < 5 && err == nil && runCtx.Err() == nil; i++ {
				if err = check(conn); err == nil {
					pinnedReads.Add(1)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil && runCtx.Err() == nil {
				if errors.Is(err, errViolation) {
					fail(err)
				} else {
					readErrs.add(err)
				}
			}
			conn.ExecContext(context.Background(), `PRAGMA ltx_txid = latest`)
			conn.Close()
			time.Sleep(200 * time.Millisecond)
		}
	})

	start := time.Now()
	base := sampleMem(t, start, reg)
	warmUp := *longFollow / 4
	var samples []memSample
	var maxCache float64
	for elapsed := time.Duration(0); elapsed < *longFollow && len(failures) == 0; elapsed = time.Since(start) {
		time.Sleep(min(*longFollow/8, *longFollow-elapsed))
		samples = append(samples, sampleMem(t, start, reg))
		maxCache = max(maxCache, float64(samples[len(samples)-1].cache))
	}
	stop()
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}

	var warm memSample
	for _, s := range samples {
		if s.at >= warmUp {
			warm = s
			break
		}
	}
	if len(samples) == 0 || warm.at == 0 {
		t.Fatalf("the run stopped before warm-up ended (%d samples)", len(samples))
	}
	end := samples[len(samples)-1]
	t.Logf("memory and goroutines: start %s; after warm-up %s; end %s", base, warm, end)
	for _, s := range samples {
		t.Logf("  %s", s)
	}
	t.Logf("%d transactions, final TXID %s; %d follower reads, %d pinned; page cache at most %.1f MiB of its %d MiB; read errors: %d\n%s",
		txns.Load(), r.TXID(), reads.Load(), pinnedReads.Load(), maxCache/(1<<20), cacheBudget>>20, readErrs.total(), readErrs.String())
	if limit := uint64(float64(warm.net())*heapSlackFactor) + heapSlackBytes; end.net() > limit {
		t.Errorf("the live heap besides the page cache grew after warm-up: %.1f MiB at %v, %.1f MiB at the end (limit %.1f MiB)",
			mib(warm.net()), warm.at, mib(end.net()), mib(limit))
	}
	if end.goroutines > warm.goroutines+goroutineSlack {
		t.Errorf("goroutines grew after warm-up: %d at %v, %d at the end", warm.goroutines, warm.at, end.goroutines)
	}
	if maxCache > cacheBudget {
		t.Errorf("the page cache held %.0f bytes, over its budget of %d", maxCache, cacheBudget)
	}
	if reads.Load() == 0 || pinnedReads.Load() == 0 {
		t.Errorf("%d follower reads and %d pinned reads succeeded: the follower did not follow", reads.Load(), pinnedReads.Load())
	}
	if n := readErrs.total(); n > 0 {
		t.Errorf("%d reads failed on a healthy file replica", n)
	}
}

// transfer moves amt from row b to row a, in one transaction.
func transfer(db *sql.DB, a, b, amt int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE t SET n = n + ?, pad = randomblob(200) WHERE id = ?`, amt, a); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE t SET n = n - ? WHERE id = ?`, amt, b); err != nil {
		return err
	}
	return tx.Commit()
}
