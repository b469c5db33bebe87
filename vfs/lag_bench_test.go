package vfs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	filereplica "github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/writer"
)

// BenchmarkFollowerLag measures the lag of a follower: from a commit on the
// primary to the first query of a reader that sees it. The primary is
// replicated by the writer (a Sync right after each commit) into a local
// directory behind 20 ms of latency per request, which the follower polls
// through the same latency. Each op is one commit, at a random moment of
// the poll interval. It reports the lag's median and 99th percentile and
// the follower's storage requests per poll interval; "list-every-poll" is
// the poller that lists every level at each poll, for comparison.
//
//	go test ./vfs -run X -bench FollowerLag -benchtime 40x
func BenchmarkFollowerLag(b *testing.B) {
	for _, poll := range []time.Duration{100 * time.Millisecond, time.Second} {
		for _, mode := range []string{"probe", "list-every-poll"} {
			b.Run(fmt.Sprintf("poll=%s/%s", poll, mode), func(b *testing.B) {
				var gap time.Duration // the default
				if mode == "list-every-poll" {
					gap = time.Nanosecond
				}
				benchLag(b, poll, gap)
			})
		}
	}
}

func benchLag(b *testing.B, poll time.Duration, listGap time.Duration) {
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, "primary.db")
	primary, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		b.Fatal(err)
	}
	defer primary.Close()
	primary.SetMaxOpenConns(1)
	if _, err := primary.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		b.Fatal(err)
	}
	latency := wrap.Uniform(1, wrap.Behaviour{FirstByte: 20 * time.Millisecond})
	store := wrap.NewFaulty(filereplica.New(filepath.Join(dir, "replica")), latency)
	w, err := writer.New(path, store, writer.Options{SyncInterval: -1, SnapshotInterval: -1, CheckpointInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.Sync(ctx); err != nil {
		b.Fatal(err)
	}

	counting := wrap.NewCounting(store)
	name := fmt.Sprintf("lag-%d", time.Now().UnixNano())
	if err := attachListing(name, Options{Client: counting, Poll: poll}, listGap); err != nil {
		b.Fatal(err)
	}
	defer Detach(name)
	reader, err := sql.Open("sqlite3", "file:"+name+"?vfs=ltx")
	if err != nil {
		b.Fatal(err)
	}
	defer reader.Close()
	reader.SetMaxOpenConns(1)

	// The reader queries in a loop and records when it first sees each id.
	var mu sync.Mutex
	seenAt := map[int64]time.Time{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var last int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			var id sql.NullInt64
			if err := reader.QueryRowContext(ctx, `SELECT max(id) FROM t`).Scan(&id); err != nil {
				b.Error(err)
				return
			}
			if id.Int64 > last {
				now := time.Now()
				mu.Lock()
				for i := last + 1; i <= id.Int64; i++ {
					seenAt[i] = now
				}
				mu.Unlock()
				last = id.Int64
			}
			time.Sleep(200 * time.Microsecond)
		}
	})

	rng := rand.New(rand.NewPCG(1, uint64(poll)))
	var lags []time.Duration
	counting.Reset()
	start := time.Now()
	var id int64
	for b.Loop() {
		time.Sleep(time.Duration(rng.Int64N(int64(poll)))) // a random moment of the poll interval
		id++
		committed := time.Now()
		if _, err := primary.ExecContext(ctx, `INSERT INTO t(id, v) VALUES (?, randomblob(200))`, id); err != nil {
			b.Fatal(err)
		}
		if err := w.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		for {
			mu.Lock()
			at, ok := seenAt[id]
			mu.Unlock()
			if ok {
				lags = append(lags, at.Sub(committed))
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	c := counting.Counts()
	close(stop)
	wg.Wait()

	slices.Sort(lags)
	pct := func(p float64) float64 {
		return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
	}
	polls := elapsed.Seconds() / poll.Seconds()
	b.ReportMetric(pct(0.5), "lag-p50-ms")
	b.ReportMetric(pct(0.99), "lag-p99-ms")
	b.ReportMetric(float64(c.Requests())/polls, "requests/poll")
	b.ReportMetric(float64(c.Lists)/polls, "lists/poll")
	b.ReportMetric(0, "ns/op")
}
