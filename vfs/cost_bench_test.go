package vfs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkColdQueryCost runs queries of a few shapes, each on a replica
// opened cold behind the cold benchmarks' slow storage (see
// cold_bench_test.go), and reports what PRAGMA ltx_stats says each cost:
// requests, megabytes and sequential round trips, with the time it took.
// rounds-chain is the round trips the storage side measured (the longest
// chain of requests each started after the one before it had ended: an
// upper bound, see roundsClient), to compare with.
//
// It runs in the modes of LTXVFS_COLD_MODES (default: all; see coldModes).
//
// The budget/* runs are the full scan with a budget: what it cost before
// it stopped, and how soon.
func BenchmarkColdQueryCost(b *testing.B) {
	fix := coldReplica(b)
	b.Logf("database: %.0f MB, %d rows", float64(fix.dbSize)/1e6, fix.rows)
	// A key range holding about n rows: the keys are uniform hashes.
	keyRange := func(rng *rand.Rand, n int) (string, string) {
		width := uint64(n) << 32 / uint64(fix.rows)
		lo := rng.Uint64N(1<<32 - width)
		return fmt.Sprintf("k%08x", lo), fmt.Sprintf("k%08x", lo+width)
	}
	type shape struct {
		name, sql string
		args      func(rng *rand.Rand) []any
		extra     []string // DSN parameters
	}
	shapes := []shape{
		{"point", `SELECT length(payload) FROM t WHERE id = ?`,
			func(rng *rand.Rand) []any { return []any{rng.IntN(fix.rows) + 1} }, nil},
		{"index-range-1000", `SELECT count(*) + max(id) FROM t WHERE k >= ? AND k < ?`,
			func(rng *rand.Rand) []any { lo, hi := keyRange(rng, 1000); return []any{lo, hi} }, nil},
		{"index-range-100-rows", `SELECT count(*) + sum(length(payload)) FROM t WHERE k >= ? AND k < ?`,
			func(rng *rand.Rand) []any { lo, hi := keyRange(rng, 100); return []any{lo, hi} }, nil},
		{"rowid-range-10000", `SELECT count(*) + sum(length(payload)) FROM t WHERE id BETWEEN ? AND ? + 9999`,
			func(rng *rand.Rand) []any { id := rng.IntN(fix.rows-10000) + 1; return []any{id, id} }, nil},
		{"join-100", `SELECT count(*) + sum(length(b.payload)) FROM t a JOIN t b ON b.k = a.k WHERE a.id BETWEEN ? AND ? + 99`,
			func(rng *rand.Rand) []any { id := rng.IntN(fix.rows-100) + 1; return []any{id, id} }, nil},
		{"full-scan", `SELECT count(*) + sum(length(payload)) FROM t`,
			func(*rand.Rand) []any { return nil }, nil},
		{"budget/max_requests=100", `SELECT count(*) + sum(length(payload)) FROM t`,
			func(*rand.Rand) []any { return nil }, []string{"max_requests=100"}},
		{"budget/max_bytes=64MiB", `SELECT count(*) + sum(length(payload)) FROM t`,
			func(*rand.Rand) []any { return nil }, []string{"max_bytes=64MiB"}},
	}
	for _, mode := range coldModesOr("all") {
		for _, sh := range shapes {
			b.Run(mode.name+"/"+sh.name, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(11, 12))
				var reqs, mb, rounds, chain, msq []float64
				for b.Loop() {
					s := newColdSessionDisk(b, fix, mode, "", sh.extra...)
					s.phase(s.open)
					var qerr error
					_, chainN, el := s.phase(func() {
						var v any
						qerr = s.conn.QueryRowContext(context.Background(), sh.sql, sh.args(rng)...).Scan(&v)
					})
					var over *BudgetError
					switch {
					case sh.extra == nil && qerr != nil:
						b.Fatalf("%s: %v", sh.name, qerr)
					case sh.extra != nil && !errors.As(qerr, &over):
						b.Fatalf("%s: %v, want the budget's error", sh.name, qerr)
					}
					var text string
					if err := s.conn.QueryRowContext(context.Background(), `PRAGMA ltx_stats`).Scan(&text); err != nil {
						b.Fatal(err)
					}
					st, err := ParseStats(text)
					if err != nil {
						b.Fatal(err)
					}
					if c := s.counting.Counts(); c.Requests() != st.Requests || c.BytesRead != st.Bytes {
						b.Fatalf("%s: ltx_stats %v; storage saw %d requests, %d bytes", sh.name, st, c.Requests(), c.BytesRead)
					}
					b.Logf("%s: %v in %s", sh.name, st, el.Round(time.Millisecond))
					reqs, mb, rounds = append(reqs, float64(st.Requests)), append(mb, float64(st.Bytes)/1e6), append(rounds, float64(st.RoundTrips))
					chain, msq = append(chain, float64(chainN)), append(msq, ms(el))
					s.close()
				}
				b.ReportMetric(median(reqs), "requests")
				b.ReportMetric(median(mb), "MB")
				b.ReportMetric(median(rounds), "rounds")
				b.ReportMetric(median(chain), "rounds-chain")
				b.ReportMetric(median(msq), "ms")
			})
		}
	}
}
