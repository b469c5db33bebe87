package writer_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/restore"
	"github.com/ltxvfs/ltxvfs/writer"
)

var benchSyncInterval = func() time.Duration { d, _ := time.ParseDuration(os.Getenv("BENCH_SYNC")); return d }()

// appTxn is the application's transaction in the benchmarks: one row of
// about 100 bytes, autocommit.
func appTxn(b *testing.B, db *sql.DB, i int) {
	if _, err := db.Exec(`INSERT INTO t (v, n) VALUES (?, ?)`, fmt.Sprintf("%0100d", i), i); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppWrites measures the application's write throughput with and
// without a writer replicating the database (default options: a sync a
// second, PASSIVE checkpoints past 1000 pages) to a local directory. Run
// both in one invocation and compare txn/s.
func BenchmarkAppWrites(b *testing.B) {
	for _, replicated := range []bool{false, true} {
		name := "alone"
		if replicated {
			name = "replicated"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "app.db")
			db := openApp(b, path)
			if replicated {
				r := newReplicator(b, path, newReplica(b), writer.Options{SnapshotInterval: -1, SyncInterval: benchSyncInterval})
				if err := r.Start(ctx); err != nil {
					b.Fatal(err)
				}
				defer r.Close(ctx)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				appTxn(b, db, i)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "txn/s")
		})
	}
}

// BenchmarkSync measures the latency of a sync (copy the WAL's new
// transactions into an L0 file and upload it to a local directory) while
// the application writes continuously, and the L0 bytes per committed
// transaction. Each iteration is one sync, 100 ms apart, as a writer with
// a 100 ms sync interval would do.
// The no-manifest variants give the cost of publishing the manifest after
// each sync, in the same run.
func BenchmarkSync(b *testing.B) {
	b.Run("unthrottled", func(b *testing.B) { benchSync(b, 0, false) })
	b.Run("1000txn/s", func(b *testing.B) { benchSync(b, time.Millisecond, false) })
	b.Run("1000txn/s,no-manifest", func(b *testing.B) { benchSync(b, time.Millisecond, true) })
}

func benchSync(b *testing.B, pace time.Duration, noManifest bool) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "app.db")
	db := openApp(b, path)
	c := newReplica(b)
	r := newReplicator(b, path, c, writer.Options{SyncInterval: -1, SnapshotInterval: -1, NoManifest: noManifest})
	defer r.Close(ctx)
	if err := r.Sync(ctx); err != nil {
		b.Fatal(err)
	}

	var txns atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			appTxn(b, db, i)
			txns.Add(1)
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	}()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(100 * time.Millisecond)
		t0 := time.Now()
		if err := r.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	close(stop)
	<-done
	if err := r.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	var l0 int64
	for _, f := range listLevel(b, c, 0)[1:] {
		l0 += f.Size
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(l0)/float64(txns.Load()), "L0-bytes/txn")
	b.ReportMetric(float64(txns.Load())/float64(b.N), "txn/sync")
}

// BenchmarkRestore restores, from a local directory, a snapshot of a 16 MiB
// database and the 60 L0 files that follow it: every input is streamed
// through the ltx Compactor and verified on the way. MB/s counts the
// database restored.
func BenchmarkRestore(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, "app.db")
	app := openApp(b, path)
	r := newReplicator(b, path, newReplica(b), writer.Options{SyncInterval: -1, SnapshotInterval: -1, CompactionIntervals: []time.Duration{}})
	defer r.Close(ctx)
	for i := 0; i < 4; i++ {
		execSQL(b, app, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 15000)
			INSERT INTO t (v, n) SELECT hex(randomblob(100)), i FROM s`)
		if err := r.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := r.Snapshot(ctx); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		execSQL(b, app, `UPDATE t SET n = n + 1 WHERE id % 211 = ?`, i)
		if err := r.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	dst := filepath.Join(dir, "restored.db")
	var res *restore.Result
	for b.Loop() {
		var err error
		if res, err = restore.Run(ctx, r.Client(), dst, restore.Options{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(res.Pages) * int64(res.PageSize))
	b.ReportMetric(float64(len(res.Files)), "files")
}
