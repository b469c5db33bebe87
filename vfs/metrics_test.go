package vfs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
)

func TestMetrics(t *testing.T) {
	src := newSource(t, 4096)
	src.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)`)
	src.exec(`INSERT INTO t(id, v) SELECT value, 'v' FROM generate_series(1, 1000)`)

	reg := prometheus.NewRegistry()
	attach(t, "measured", Options{Client: src.client, Registerer: reg, Poll: time.Hour})
	if err := Attach("measured-again", Options{Client: src.client, Registerer: reg}); err != nil {
		t.Fatalf("a second replica on the same registerer: %v", err)
	}
	Detach("measured-again")

	db := openDB(t, "file:measured?vfs=ltx")
	db.SetMaxOpenConns(1)
	ints(t, db, `SELECT count(*) FROM t`)
	c := conn(t, db)
	if _, err := c.ExecContext(t.Context(), `BEGIN`); err != nil {
		t.Fatal(err)
	}
	ints(t, c, `SELECT count(*) FROM t`)

	m := gather(t, reg)
	for name, check := range map[string]func(float64) bool{
		`ltxvfs_page_reads_total`:                  func(v float64) bool { return v >= 3 },
		`ltxvfs_storage_requests_total{op="list"}`: func(v float64) bool { return v == 1 }, // every level in one listing
		// Small files are read whole with their page indexes, pages and all.
		`ltxvfs_storage_requests_total{op="read"}`: func(v float64) bool { return v >= 1 },
		`ltxvfs_storage_read_bytes_total`:          func(v float64) bool { return v > 4096 },
		`ltxvfs_fetch_seconds_count`:               func(v float64) bool { return v >= 1 },
		`ltxvfs_latest_txid`:                       func(v float64) bool { return v == 2 },
		`ltxvfs_oldest_pinned_txid`:                func(v float64) bool { return v == 2 },
		`ltxvfs_lag_seconds`:                       func(v float64) bool { return v > 3000 }, // stamped ~59 min ago
		`ltxvfs_cache_hits_total`:                  func(v float64) bool { return v >= 0 },
		`ltxvfs_cache_misses_total`:                func(v float64) bool { return v >= 0 },
	} {
		v, ok := m[name]
		if !ok {
			t.Errorf("metric %s missing (have %v)", name, m)
			continue
		}
		if !check(v) {
			t.Errorf("%s = %v", name, v)
		}
	}
	if _, err := c.ExecContext(t.Context(), `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if v := gather(t, reg)[`ltxvfs_oldest_pinned_txid`]; v != 0 {
		t.Errorf("oldest_pinned_txid = %v after COMMIT, want 0", v)
	}

	// Detach unregisters everything, and the name can be attached again
	// with the same registerer while a connection is still open.
	Detach("measured")
	if m := gather(t, reg); len(m) != 0 {
		t.Fatalf("metrics left after Detach: %v", m)
	}
	if got := ints(t, c, `SELECT count(*) FROM t`); got[0] != 1000 {
		t.Fatalf("after Detach, the open connection: %v", got)
	}
	attach(t, "measured", Options{Client: src.client, Registerer: reg, Poll: time.Hour})
	c.Close()
	db.Close()
}

// gather flattens a registry's metrics of replica "measured" to name{op} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			replica := ""
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "op", "budget":
					name += `{` + l.GetName() + `="` + l.GetValue() + `"}`
				case "replica":
					replica = l.GetValue()
				}
			}
			if replica != "measured" {
				t.Fatalf("%s has replica label %q", name, replica)
			}
			out[name] = value(m)
			if h := m.GetHistogram(); h != nil {
				out[name+"_count"] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// TestMetricsOfObjectRequests: object requests are counted by op of their
// own, a 304 apart from a read with a body, and their bodies' bytes with
// the bytes read.
func TestMetricsOfObjectRequests(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, "measured", nil)
	reg.MustRegister(m.requests, m.bytes)
	c := &meteredClient{Client: mem.New(), m: m}

	w, err := c.WriteObject(ctx, "manifest", strings.NewReader("0123456789"), storage.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := storage.ReadAllObject(ctx, c, "manifest", storage.ReadOptions{}, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{IfNoneMatch: w.ETag}); !errors.Is(err, storage.ErrNotModified) {
		t.Fatal(err)
	}
	if _, err := c.ListObjects(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteObjects(ctx, []string{"manifest"}); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for name, want := range map[string]float64{
		`ltxvfs_storage_requests_total{op="object_write"}`:        1,
		`ltxvfs_storage_requests_total{op="object_read"}`:         1,
		`ltxvfs_storage_requests_total{op="object_not_modified"}`: 1,
		`ltxvfs_storage_requests_total{op="object_list"}`:         1,
		`ltxvfs_storage_requests_total{op="object_delete"}`:       1,
		`ltxvfs_storage_read_bytes_total`:                         10,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
}

// TestMetricsOfStatementCosts: the metrics count the round trips and disk
// hits of statements as ltx_stats does, and the statements their budget
// stopped, by budget.
func TestMetricsOfStatementCosts(t *testing.T) {
	src := statsSource(t)
	reg := prometheus.NewRegistry()
	attach(t, "measured", Options{Client: src.client, Registerer: reg, Poll: time.Hour})
	c := conn(t, openDB(t, "file:measured?vfs=ltx&max_bytes=64KiB"))
	var rounds int64
	for _, q := range costQueries[:2] {
		ints(t, c, q.sql)
		rounds += statsOf(t, c).RoundTrips
	}
	if _, err := c.ExecContext(t.Context(), fullScan); err == nil {
		t.Fatal("a full scan within max_bytes=64KiB")
	}
	rounds += statsOf(t, c).RoundTrips
	m := gather(t, reg)
	for name, want := range map[string]float64{
		`ltxvfs_round_trips_total`:                      float64(rounds),
		`ltxvfs_disk_hits_total`:                        0,
		`ltxvfs_budget_stops_total{budget="max_bytes"}`: 1,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", name, got, ok, want)
		}
	}
	if rounds == 0 {
		t.Fatal("no round trip: the test tests nothing")
	}
}
