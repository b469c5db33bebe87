package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/writer"
)

// TestWriterNetworkFaults replicates a database under a steady write load
// into a real S3 server through a real fault proxy, and injects each kind
// of network fault in turn (latency spikes, a bandwidth collapse,
// connection resets, bodies cut mid-way, stalls longer than the response
// timeout, half-open connections, 503 SlowDown bursts): no file is ever
// visible partly written or damaged (each is read whole through a clean
// connection and verified as it appears), the writer says it is behind
// once a sync failed under a fault (writer.Lag and its
// replica_lag_seconds metric), it catches up once the fault ends, and the replica restores to
// exactly the source at the end: no commit lost.
func TestWriterNetworkFaults(t *testing.T) {
	seed := testSeed(t)
	ctx := context.Background()
	chain := newNetChain(t, seed)
	faulty := chain.client(t, "db", true)
	clean := chain.client(t, "db", false)

	path := filepath.Join(t.TempDir(), "app.db")
	m := newModel(seed)
	load := startAppLoad(t, path, m)

	var logged errorKinds
	opts := busyWriterOpts()
	opts.SyncInterval = 20 * time.Millisecond
	opts.MaxRetryInterval = 200 * time.Millisecond
	opts.Logger = newWarnLog(&logged)
	// L0 files stay long enough after their compaction for the checker
	// to see every one: that every TXID reached L0 is what says no commit
	// was lost on the way (the restore at the end only says the last
	// state was).
	opts.L0Retention = 5 * time.Second
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	r, err := writer.New(path, faulty, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)

	// Everything that ever becomes visible is read whole and verified,
	// through a clean connection.
	checkCtx, stopCheck := context.WithCancel(ctx)
	var visible sync.Map
	var damaged []string
	var verified atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			damaged = append(damaged, verifyVisible(ctx, clean, &visible, &verified)...)
			select {
			case <-checkCtx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})

	// The lag, as the writer reports it and as it is: how long the
	// replica's TXID has stood still while the source kept committing.
	var tally faultTally
	var current atomic.Pointer[string]
	wg.Go(func() {
		lastTXID, movedAt := r.TXID(), time.Now()
		for checkCtx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			if txid := r.TXID(); txid != lastTXID {
				lastTXID, movedAt = txid, time.Now()
			}
			kind := current.Load()
			if kind == nil {
				continue
			}
			reported := time.Duration(gaugeValue(t, reg, "ltx_writer_replica_lag_seconds") * float64(time.Second))
			tally.update(*kind, func(o *faultOutcome) {
				o.maxLag = max(o.maxLag, reported, r.Lag())
				o.maxTrueLag = max(o.maxTrueLag, time.Since(movedAt))
			})
		}
	})

	waitCaughtUp := func(what string) time.Duration {
		t.Helper()
		start := time.Now()
		from := r.TXID()
		for r.Lag() != 0 || r.TXID() == from {
			if err := r.Err(); err != nil {
				t.Fatalf("replication stopped: %v", err)
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("%s: the writer has not caught up 30 s later: TXID %s (was %s), lag %v", what, r.TXID(), from, r.Lag())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitCaughtUp("before the faults")

	for i, f := range netFaults {
		syncErrs := counterValue(t, reg, "ltx_writer_sync_errors_total")
		slowDowns := chain.throttle.SlowDowns()
		current.Store(&f.name)
		end, err := chain.inject(f, seed+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(f.duration())
		if err := end(); err != nil {
			t.Fatal(err)
		}
		catchUp := waitCaughtUp("after " + f.name)
		current.Store(nil)
		tally.update(f.name, func(o *faultOutcome) {
			o.injected++
			o.catchUp = max(o.catchUp, catchUp)
			o.syncErrors += int(counterValue(t, reg, "ltx_writer_sync_errors_total") - syncErrs)
			o.slowDowns += chain.throttle.SlowDowns() - slowDowns
		})
	}

	load.halt()
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("final sync: %v", err)
	}
	stopCheck()
	wg.Wait()
	damaged = append(damaged, verifyVisible(ctx, clean, &visible, &verified)...)
	for _, bad := range damaged {
		t.Errorf("a damaged file was visible: %s", bad)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("replication stopped: %v", err)
	}

	if gaps := l0Gaps(&visible, r.TXID()); gaps != "" {
		t.Errorf("TXIDs never seen in L0 (commits lost on the way): %s; the replica now:\n%s", gaps, listReplica(ctx, clean))
	}

	checkRestoreWhole(t, ctx, clean, m)

	var report strings.Builder
	for _, f := range netFaults {
		o := tally.get(f.name)
		fmt.Fprintf(&report, "  %-22s injected %d× for %v: writer reported lag up to %v (the TXID stood still up to %v); %d failed syncs; caught up %v after the fault ended",
			f.name, o.injected, f.duration(), o.maxLag.Round(time.Millisecond), o.maxTrueLag.Round(time.Millisecond), o.syncErrors, o.catchUp.Round(time.Millisecond))
		if o.slowDowns > 0 {
			fmt.Fprintf(&report, "; %d requests answered 503 SlowDown", o.slowDowns)
		}
		report.WriteString("\n")
		// Lag counts from the first failed sync: a sync still retrying
		// (or hung) reports none yet, however long the TXID stands still.
		if o.syncErrors > 0 && o.maxLag == 0 {
			t.Errorf("%s: %d syncs failed, yet the writer never reported any lag (the TXID stood still up to %v)", f.name, o.syncErrors, o.maxTrueLag.Round(time.Millisecond))
		}
	}
	t.Logf("%d transactions, final TXID %s, every TXID seen in L0, restored whole; %d files verified whole as they became visible, 0 damaged", m.committed(), r.TXID(), verified.Load())
	t.Logf("faults by kind:\n%s", report.String())
	t.Logf("warnings logged by the writer (%d):\n%s", logged.total(), logged.String())
}

// gaugeValue is the sum of a metric's gauges in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return metricValue(t, reg, name, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

// counterValue is the sum of a metric's counters in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return metricValue(t, reg, name, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, value func(*dto.Metric) float64) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Errorf("gather metrics: %v", err)
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += value(m)
			}
		}
	}
	return sum
}

// listReplica names every file of every level, with its size and time, for
// a failure's message.
func listReplica(ctx context.Context, c storage.Client) string {
	var b strings.Builder
	for level := 0; level <= storage.SnapshotLevel; level++ {
		infos, err := storage.ListLevel(ctx, c, level, 0, false)
		if err != nil {
			fmt.Fprintf(&b, "  list L%d: %v\n", level, err)
			continue
		}
		for _, f := range infos {
			fmt.Fprintf(&b, "  %s %d bytes, created %s\n", storage.FileName(f.Level, f.MinTXID, f.MaxTXID), f.Size, f.CreatedAt.Format(time.RFC3339Nano))
		}
	}
	return b.String()
}

// l0Gaps lists the TXIDs up to last that no L0 file seen (keys of
// verifyVisible's map) held.
func l0Gaps(seen *sync.Map, last ltx.TXID) string {
	covered := make([]bool, last+1)
	seen.Range(func(key, _ any) bool {
		name, ok := strings.CutPrefix(key.(string), "L0/")
		if !ok {
			return true
		}
		name, _, _ = strings.Cut(name, "/")
		minTXID, maxTXID, err := ltx.ParseFilename(name)
		if err != nil {
			return true
		}
		for txid := minTXID; txid <= maxTXID && txid <= last; txid++ {
			covered[txid] = true
		}
		return true
	})
	var gaps []string
	for txid := ltx.TXID(1); txid <= last; txid++ {
		if !covered[txid] {
			gaps = append(gaps, txid.String())
		}
	}
	if len(gaps) > 10 {
		gaps = append(gaps[:10], fmt.Sprintf("and %d more", len(gaps)-10))
	}
	return strings.Join(gaps, ", ")
}
