package vfs

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkReadYourWrites measures, over b.N commits, how long after a
// commit returns a reader in the same process sees it: with the writer's
// token (SyncToken, then PRAGMA ltx_wait) and, for comparison, by following
// alone (re-reading until the row appears). The writer syncs every 100 ms
// and the reader polls every 100 ms, on a local-directory replica. Run
// with -benchtime=300x: each commit is one iteration; the figures are the
// p50 and p99 in ms (token: the SyncToken call; wait: the PRAGMA; total:
// commit to visible).
func BenchmarkReadYourWrites(b *testing.B) {
	b.Run("token", func(b *testing.B) {
		w := newLiveWriter(b, 100*time.Millisecond)
		c := conn(b, openDB(b, w.dsn("poll=100ms")))
		hasRow(b, c, 0) // opened and following
		var tokens, waits, totals []time.Duration
		b.ResetTimer()
		for i := range b.N {
			w.insert(i + 1)
			committed := time.Now()
			tok := w.token()
			got := time.Now()
			one[string](b, c, `PRAGMA ltx_wait = '`+tok+`'`)
			seen := time.Now()
			if !hasRow(b, c, i+1) {
				b.Fatalf("row %d not visible after PRAGMA ltx_wait = '%s'", i+1, tok)
			}
			tokens, waits, totals = append(tokens, got.Sub(committed)), append(waits, seen.Sub(got)), append(totals, seen.Sub(committed))
		}
		b.StopTimer()
		reportPercentiles(b, "token", tokens)
		reportPercentiles(b, "wait", waits)
		reportPercentiles(b, "total", totals)
	})
	b.Run("follow", func(b *testing.B) {
		w := newLiveWriter(b, 100*time.Millisecond)
		c := conn(b, openDB(b, w.dsn("poll=100ms")))
		hasRow(b, c, 0)
		var totals []time.Duration
		b.ResetTimer()
		for i := range b.N {
			w.insert(i + 1)
			committed := time.Now()
			for deadline := committed.Add(30 * time.Second); !hasRow(b, c, i+1); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatalf("row %d not visible 30 s after its commit", i+1)
				}
			}
			totals = append(totals, time.Since(committed))
		}
		b.StopTimer()
		reportPercentiles(b, "total", totals)
	})
}

// reportPercentiles reports the p50 and p99 of ds in ms.
func reportPercentiles(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
}
