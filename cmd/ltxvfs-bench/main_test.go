package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/internal/nginxtest"
)

// TestQuickRun runs the whole harness in quick mode on a 16 MiB database
// and checks that the JSON holds every figure with sane values, so that the
// harness cannot rot while the code it measures changes. No timing is
// asserted: only what must hold on any machine.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and replicates a 16 MiB database")
	}
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	var stdout, stderr bytes.Buffer
	httpArgs := serveHTTP(t)
	args := append([]string{"-quick", "-latency", "1ms", "-scan-timeout", "10m", "-dir", dir, "-json", jsonPath, "-svg", svgPath, "-litestream"}, httpArgs...)
	code := run(t.Context(), args, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}

	// Every figure is there, by its stable name.
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range requiredFields {
		if len(httpArgs) == 0 && (strings.HasPrefix(path, "http.") || path == "setup.http_server") {
			continue
		}
		if _, ok := lookupPath(doc, path); !ok {
			t.Errorf("JSON lacks %s", path)
		}
	}
	// Nothing is negative; every distribution is ordered.
	walkNumbers(t, "", doc)

	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	s := res.Setup
	if s.DatabaseBytes < 15<<20 || s.DatabaseBytes > 18<<20 {
		t.Errorf("quick database is %d bytes, want about 16 MiB", s.DatabaseBytes)
	}
	for _, level := range []string{"L0", "L1", "L2", "L9"} {
		if s.FilesByLevel[level] == 0 {
			t.Errorf("the replica has no %s file: %v", level, s.FilesByLevel)
		}
	}
	if want := []string{"L9", "L2", "L1", "L0 x6"}; strings.Join(s.LatestPlan, ",") != strings.Join(want, ",") {
		t.Errorf("latest plan %v, want %v: snapshot, compactions and L0 files", s.LatestPlan, want)
	}

	// Cold reads ask storage; warm repeated lookups never do.
	cold := map[string]int64{
		"cold open":                res.ColdOpen.Requests,
		"first lookup by rowid":    res.RowidLookup.First.Requests,
		"first lookup by index":    res.IndexLookup.First.Requests,
		"range scan":               res.RangeScan.Requests,
		"index range scan":         res.IndexRange.Requests,
		"full scan":                res.FullScan.Requests,
		"time-travel open":         res.TimeTravel.Open.Requests,
		"time-travel first lookup": res.TimeTravel.Lookup.Requests,
		"restore":                  res.Restore.Requests,
		"cold open bytes":          res.ColdOpen.Bytes,
		"full scan bytes":          res.FullScan.Bytes,
		"restore bytes":            res.Restore.Bytes,
		"full scan database pages": res.FullScan.PageBytes,
		"cold open round trips":    int64(res.ColdOpen.RoundTrips),
		"first lookup round trips": int64(res.RowidLookup.First.RoundTrips),
	}
	for what, n := range cold {
		if n <= 0 {
			t.Errorf("%s: %d, want > 0", what, n)
		}
	}
	if res.ColdOpen.RoundTrips > int(res.ColdOpen.Requests) {
		t.Errorf("cold open: %d round trips for %d requests", res.ColdOpen.RoundTrips, res.ColdOpen.Requests)
	}
	if res.Warm.LtxRequests != 0 || res.Warm.LtxLookups == 0 {
		t.Errorf("warm lookups: %d storage requests for %d lookups, want 0 for > 0", res.Warm.LtxRequests, res.Warm.LtxLookups)
	}
	if res.Warm.LtxPerSec <= 0 || res.Warm.LocalPerSec <= 0 || res.Warm.LocalImmutablePerSec <= 0 || res.Warm.RatioVsLocal <= 0 || res.Warm.MedianRatioVsLocalImmutable <= 0 {
		t.Errorf("warm rates missing: %+v", res.Warm)
	}
	if res.RowidLookup.Count != 20 || res.IndexLookup.Count != 20 {
		t.Errorf("cold lookups: %d by rowid, %d by index, want 20 each", res.RowidLookup.Count, res.IndexLookup.Count)
	}
	if !res.FullScan.Complete || !res.RangeScan.Complete || !res.IndexRange.Complete || !res.Join.Complete || res.RangeScan.Rows != 1000 || res.Join.Rows != 100 || res.FullScan.Rows != s.Rows {
		t.Errorf("scans: range %d rows (complete %v), full %d of %d rows (complete %v)",
			res.RangeScan.Rows, res.RangeScan.Complete, res.FullScan.Rows, s.Rows, res.FullScan.Complete)
	}
	if res.FullScan.PageBytes < s.DatabaseBytes/2 {
		t.Errorf("full scan read %d bytes of pages of a %d-byte database", res.FullScan.PageBytes, s.DatabaseBytes)
	}
	if res.TimeTravel.TXID == 0 || res.TimeTravel.TXID >= s.LatestTXID || res.TimeTravel.PlanFiles < 2 {
		t.Errorf("time travel to TXID %d of %d with a plan of %d files", res.TimeTravel.TXID, s.LatestTXID, res.TimeTravel.PlanFiles)
	}
	if res.Lag.Commits != 4 || res.Lag.P50MS <= 0 || res.Lag.UploadToVisibleP99MS > res.Lag.P99MS {
		t.Errorf("follower lag: %+v", res.Lag)
	}
	if p := res.PageFetch; p.Count == 0 || p.MeanBytes <= 0 || p.FirstByteP50MS > p.P50MS || p.FirstByteP99MS > p.MaxMS {
		t.Errorf("page fetches: %+v", p)
	}
	if !res.Restore.MatchesSource || res.Restore.TXID != s.LatestTXID {
		t.Errorf("restore: TXID %d (latest %d), matches the primary: %v", res.Restore.TXID, s.LatestTXID, res.Restore.MatchesSource)
	}

	checkKinds(t, &res, s)

	// The table and the chart.
	for _, want := range []string{"cold open", "after a restart, diskcache=", "first lookup by rowid", "cold lookups by index", "local immutable=1", "range scan", "index range scan", "join with customers", "full scan", "time travel", "follower lag", "upload -> visible", "page fetch", "full restore", "equals the primary",
		"followers, all at once", "$/month", "manifest off beside ours", "litestream-shaped beside ours", "http beside ours", "load "} {
		if want == "http beside ours" && len(httpArgs) == 0 {
			continue
		}
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg)

	// The work directory is removed without -keep.
	if left, _ := filepath.Glob(filepath.Join(dir, "ltxvfs-bench-*")); len(left) != 0 {
		t.Errorf("work directory left behind: %v", left)
	}
}

// serveHTTP is -serve-http with the nginx the tests install (see
// nginxtest), or nothing where nginx cannot be had (a failure in CI).
func serveHTTP(t *testing.T) []string {
	bin, err := nginxtest.Binary()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("nginx unavailable (CI is set, so this fails instead of leaving -serve-http out): %v", err)
		}
		t.Logf("nginx unavailable, -serve-http left out: %v", err)
		return nil
	}
	t.Setenv("NGINX", bin)
	return []string{"-serve-http"}
}

// checkKinds checks the figures of the kinds of replica against one
// another: what the manifest saves, what a follower costs, what each kind
// measured. Counts only: nothing timed.
func checkKinds(t *testing.T, res *Result, s Setup) {
	t.Helper()
	// Ours opens from the manifest without listing; without the manifest a
	// reader lists the levels.
	for i, o := range res.ColdOpen.All {
		if o.Lists != 0 {
			t.Errorf("cold open %d of ours: %d LISTs, want none (the manifest)", i, o.Lists)
		}
	}
	if res.NoManifest == nil || len(res.NoManifest.ColdOpen.All) != 1 || res.NoManifest.ColdOpen.All[0].Lists == 0 {
		t.Errorf("cold open without the manifest: %+v, want one open that lists", res.NoManifest)
	}
	if d := res.DiskRestart; d.Requests < 1 || d.RoundTrips < 1 || d.Requests > res.ColdOpen.Requests || d.Lists != 0 {
		t.Errorf("open after a restart with a disk tier: %+v (a cold open: %d requests)", d, res.ColdOpen.Requests)
	}

	kinds := map[string]*Figures{targetOurs: &res.Figures, targetNoManifest: res.NoManifest, targetLitestream: res.Litestream}
	if s.HTTPServer != "" {
		kinds[targetHTTP] = res.HTTP
	}
	for name, f := range kinds {
		if f == nil {
			t.Errorf("%s: no figures", name)
			continue
		}
		fc := f.Follow
		if f.Lag.Commits != 4 || fc.Seconds <= 0 || fc.Polls <= 0 || fc.Requests == 0 || f.FollowWithLookups.Requests == 0 {
			t.Errorf("%s follower: lag %+v, requests %+v", name, f.Lag, fc)
		}
		if n := fc.Lists + fc.LTXGets + fc.ObjectGets + fc.NotModified; n != fc.Requests {
			t.Errorf("%s follower: %d requests by kind, %d in all", name, n, fc.Requests)
		}
		// The dollars are the counts at S3 Standard prices.
		perHour := 3600 / fc.Seconds
		want := (float64(fc.Lists)*0.005 + float64(fc.LTXGets+fc.ObjectGets+fc.NotModified)*0.0004) / 1000 * perHour * 730
		if math.Abs(fc.DollarsPerMonth-want) > 0.002+want*1e-3 {
			t.Errorf("%s follower: $%.3f a month for %+v, want $%.3f", name, fc.DollarsPerMonth, fc, want)
		}
		switch name {
		case targetOurs, targetHTTP:
			// One read of the manifest a poll, answered 304 when it has
			// not changed: no LIST, no probe. (A ticker drops the ticks
			// of a busy machine, never adds one.)
			if fc.Lists != 0 || fc.LTXGets != 0 || fc.ObjectGets+fc.NotModified == 0 || float64(fc.Requests) > fc.Polls+2 {
				t.Errorf("%s follower (manifest): %+v, want no LIST nor LTX GET and at most one manifest read a poll", name, fc)
			}
		default:
			// Listings (the first after 10 s) and probes for the next L0
			// file: never the manifest.
			if fc.ObjectGets != 0 || fc.NotModified != 0 || fc.Lists+fc.LTXGets == 0 {
				t.Errorf("%s follower (no manifest): %+v, want listings or probes and no object read", name, fc)
			}
		}
	}
	if s.HTTPServer != "" {
		h := res.HTTP
		if h.ColdOpen.Count == 0 || h.ColdOpen.Requests == 0 || h.RowidLookup.Count != 20 || !h.FullScan.Complete || h.FullScan.Rows != s.Rows || h.PageFetch.Count == 0 {
			t.Errorf("http: cold open %+v, lookups %d, full scan %+v", h.ColdOpen, h.RowidLookup.Count, h.FullScan)
		}
	}

	// The Litestream-shaped replica has every figure, from the same files.
	l := res.Litestream
	if l.ColdOpen.Count < 5 || l.RowidLookup.Count != 20 || l.IndexLookup.Count != 20 || !l.FullScan.Complete || l.FullScan.Rows != s.Rows ||
		!l.RangeScan.Complete || !l.Join.Complete || l.TimeTravel.Open.Requests == 0 || l.PageFetch.Count == 0 {
		t.Errorf("litestream-shaped: %+v", l)
	}
	if l.Warm.LtxRequests != 0 || l.Warm.LtxLookups == 0 || l.Warm.RatioVsLocalImmutable <= 0 {
		t.Errorf("litestream-shaped warm lookups: %+v", l.Warm)
	}
	for i, o := range l.ColdOpen.All {
		if o.Lists == 0 {
			t.Errorf("cold open %d of the litestream-shaped replica made no LIST: it has no manifest to open from", i)
		}
	}
}

// requiredFields are the figures every run must report.
var requiredFields = []string{
	"version", "setup.database_bytes", "setup.rows", "setup.files_by_level", "setup.latest_plan", "setup.latency_ms", "setup.bandwidth_bytes_per_sec",
	"cold_open.p50_ms", "cold_open.requests", "cold_open.round_trips",
	"cold_lookup_rowid.first.requests", "cold_lookup_rowid.first.ms", "cold_lookup_rowid.requests_per_lookup", "cold_lookup_rowid.p50_ms", "cold_lookup_rowid.p99_ms",
	"cold_lookup_index.first.requests", "cold_lookup_index.first.ms", "cold_lookup_index.requests_per_lookup", "cold_lookup_index.p50_ms", "cold_lookup_index.p99_ms",
	"warm_lookup.ltx_per_sec", "warm_lookup.local_per_sec", "warm_lookup.local_immutable_per_sec", "warm_lookup.ratio_vs_local", "warm_lookup.ratio_vs_local_immutable", "warm_lookup.median_ratio_vs_local", "warm_lookup.median_ratio_vs_local_immutable", "warm_lookup.ltx_requests",
	"range_scan.ms", "range_scan.requests", "range_scan.bytes", "range_scan.mb_per_sec",
	"cold_join.ms", "cold_join.requests", "cold_join.rows",
	"full_scan.ms", "full_scan.requests", "full_scan.bytes", "full_scan.mb_per_sec", "full_scan.complete",
	"time_travel.txid", "time_travel.open.ms", "time_travel.open.requests", "time_travel.lookup.requests",
	"follower_lag.p50_ms", "follower_lag.p99_ms", "follower_lag.upload_to_visible_p50_ms", "follower_lag.upload_to_visible_p99_ms",
	"page_fetch.p50_ms", "page_fetch.p99_ms", "page_fetch.p999_ms", "page_fetch.first_byte_p50_ms", "page_fetch.first_byte_p99_ms", "page_fetch.mean_bytes",
	"restore.ms", "restore.requests", "restore.bytes", "restore.matches_source",
	"setup.load_start", "setup.load_end", "setup.http_server",
	"cold_open_disk_restart.requests", "cold_open_disk_restart.round_trips",
	"follower_requests.lists", "follower_requests.ltx_gets", "follower_requests.object_gets", "follower_requests.not_modified",
	"follower_requests.requests_per_poll", "follower_requests.requests_per_hour", "follower_requests.dollars_per_month",
	"follower_requests_with_lookups.requests_per_poll",
	"no_manifest.cold_open.requests", "no_manifest.follower_requests.lists", "no_manifest.follower_requests.dollars_per_month", "no_manifest.follower_lag.p99_ms",
	"litestream_shaped.cold_open.round_trips", "litestream_shaped.cold_lookup_rowid.requests_per_lookup", "litestream_shaped.cold_lookup_index.requests_per_lookup",
	"litestream_shaped.full_scan.mb_per_sec", "litestream_shaped.warm_lookup.ratio_vs_local_immutable", "litestream_shaped.follower_requests.requests_per_poll",
	"http.cold_open.round_trips", "http.cold_open.requests", "http.full_scan.mb_per_sec", "http.follower_lag.p99_ms", "http.follower_requests.requests_per_poll",
}

func lookupPath(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// walkNumbers fails on a negative number anywhere, and on an object whose
// p50 exceeds its p99 (or p99 its p999, or any its max).
func walkNumbers(t *testing.T, at string, v any) {
	t.Helper()
	switch v := v.(type) {
	case float64:
		if v < 0 {
			t.Errorf("%s = %v, negative", at, v)
		}
	case []any:
		for i, e := range v {
			walkNumbers(t, at+"["+strconv.Itoa(i)+"]", e)
		}
	case map[string]any:
		for k, e := range v {
			walkNumbers(t, strings.TrimPrefix(at+"."+k, "."), e)
		}
		for _, prefix := range []string{"", "commit_to_upload_", "upload_to_visible_", "first_byte_"} {
			var last float64
			var lastKey string
			for _, q := range []string{"p50_ms", "p99_ms", "p999_ms", "max_ms"} {
				f, ok := v[prefix+q].(float64)
				if !ok {
					continue
				}
				if f < last {
					t.Errorf("%s: %s = %v is below %s = %v", at, prefix+q, f, lastKey, last)
				}
				last, lastKey = f, prefix+q
			}
		}
	}
}

// checkSVG parses the chart as XML and looks for its parts.
func checkSVG(t *testing.T, data []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	elements := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elements[se.Name.Local]++
		}
	}
	if elements["svg"] != 1 || elements["polyline"] < 5 || elements["rect"] < 6 || elements["text"] < 20 {
		t.Errorf("the SVG lacks its curves, bars or labels: %v", elements)
	}
}

// TestFlags: -h documents the flags, and -quick and -replica set the
// defaults they name. Bad flag values are in TestBadCommandLines.
func TestFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("-h: exit code %d", code)
	}
	for _, flag := range []string{"-size", "-db", "-replica", "-keep", "-latency", "-bandwidth", "-json", "-svg", "-quick", "-lookups", "-commits", "-poll", "-sync", "-baseline", "-follow", "-litestream", "-serve-http"} {
		if !strings.Contains(stdout.String(), flag+" ") && !strings.Contains(stdout.String(), flag+"\n") {
			t.Errorf("-h does not document %s", flag)
		}
	}

	cfg, err := parseFlags([]string{"-quick", "-lookups", "7", "-bandwidth", "50MB/s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.size != 16<<20 || cfg.lookups != 7 || cfg.bandwid != 50e6 || cfg.latency != 20*time.Millisecond {
		t.Errorf("-quick with flags: size %d, lookups %d, bandwidth %d, latency %s", cfg.size, cfg.lookups, cfg.bandwid, cfg.latency)
	}
	cfg, err = parseFlags([]string{"-replica", "s3://bucket/bench", "-size", "100MB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.injected || cfg.size != 100e6 {
		t.Errorf("-replica without -latency injects latency %s, bandwidth %d (size %d)", cfg.latency, cfg.bandwid, cfg.size)
	}
}

// TestTakeDatabase checks that -db takes only a database the harness
// built: a foreign one is refused with a reason, not measured wrongly.
func TestTakeDatabase(t *testing.T) {
	dir := t.TempDir()
	built := filepath.Join(dir, "built.db")
	rows, err := buildDatabase(t.Context(), built, minSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := checkDatabase(t.Context(), built); err != nil || got != rows {
		t.Errorf("checkDatabase of a built database: %d rows, %v; want %d rows", got, err, rows)
	}
	if _, err := buildDatabase(t.Context(), built, minSize, nil); err == nil {
		t.Error("building over an existing file succeeded")
	}

	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite3", "file:"+foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := checkDatabase(t.Context(), foreign); err == nil || !strings.Contains(err.Error(), "lacks the harness's tables") {
		t.Errorf("checkDatabase of a foreign database: %v", err)
	}
	notDB := filepath.Join(dir, "text")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := checkDatabase(t.Context(), notDB); err == nil || !strings.Contains(err.Error(), notDB) {
		t.Errorf("checkDatabase of a text file: %v", err)
	}
}

func TestRoundTrips(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	sp := func(from, to int) span { return span{op: "get", start: at(from), end: at(to)} }
	cases := []struct {
		name  string
		spans []span
		want  int
	}{
		{"none", nil, 0},
		{"one", []span{sp(0, 20)}, 1},
		{"ten in parallel", []span{sp(0, 20), sp(0, 21), sp(1, 20), sp(2, 22), sp(0, 20), sp(0, 20), sp(3, 23), sp(0, 20), sp(0, 24), sp(1, 20)}, 1},
		{"listings, trailers, page 1", []span{sp(0, 20), sp(0, 21), sp(21, 41), sp(22, 42), sp(42, 62)}, 3},
		{"back to back", []span{sp(0, 20), sp(20, 40), sp(40, 60)}, 3},
		{"a long one beside a chain", []span{sp(0, 100), sp(0, 20), sp(20, 40), sp(40, 60)}, 3},
		{"overlapping chain", []span{sp(0, 20), sp(10, 30), sp(20, 40)}, 2},
	}
	for _, c := range cases {
		if got := roundTrips(c.spans); got != c.want {
			t.Errorf("%s: %d round trips, want %d", c.name, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(1001-i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond, 0.999: 999 * time.Millisecond, 1: time.Second} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %s, want %s", p*100, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing: %s", got)
	}
}
