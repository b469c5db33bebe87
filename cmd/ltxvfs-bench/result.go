package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// Result is every figure of a run, as written by -json. Field names are
// stable: scripts compare runs by them. Times are milliseconds, sizes
// bytes, rates per second; README.md ("Benchmark") defines each figure.
type Result struct {
	Version   int       `json:"version"` // of this layout: 1
	StartedAt time.Time `json:"started_at"`
	Setup     Setup     `json:"setup"`

	// Figures are the readers' of the replica as the writer makes it
	// (hints, manifest), at the top level of the JSON as before.
	Figures
	Restore Restore `json:"restore"`
	// DiskRestart is a reader's open after a restart with a disk tier
	// (diskcache=) that an earlier reader of the replica filled.
	DiskRestart Cost `json:"cold_open_disk_restart"`

	// LocalScan is the full scan's query on the restored database, a local
	// file opened with immutable=1: what this machine's CPU allows the
	// query without storage, the ceiling of the full scans above.
	LocalScan LocalScan `json:"full_scan_local_immutable"`

	// The same replica seen otherwise, in the same run: without its
	// manifest (cold open and follower only), without any of the writer's
	// objects as Litestream writes it (-litestream: every figure), and
	// read from nginx over HTTP (-serve-http: cold open, lookups by rowid,
	// full scan, follower). Figures not measured are zero.
	NoManifest *Figures `json:"no_manifest,omitempty"`
	Litestream *Figures `json:"litestream_shaped,omitempty"`
	HTTP       *Figures `json:"http,omitempty"`
}

// Figures are what the readers of one kind of replica (a target) paid.
type Figures struct {
	ColdOpen    Open       `json:"cold_open"`
	RowidLookup Lookups    `json:"cold_lookup_rowid"`
	IndexLookup Lookups    `json:"cold_lookup_index"`
	Warm        Warm       `json:"warm_lookup"`
	RangeScan   Scan       `json:"range_scan"`
	IndexRange  Scan       `json:"index_range_scan"`
	Join        Scan       `json:"cold_join"`
	FullScan    Scan       `json:"full_scan"`
	TimeTravel  TimeTravel `json:"time_travel"`
	Lag         Lag        `json:"follower_lag"`
	// Follow is an idle follower's requests (a connection that follows and
	// is never queried): the cost of following itself.
	// FollowWithLookups is the lag prober's, whose lookups also read the
	// pages of each new row.
	Follow            FollowCost `json:"follower_requests"`
	FollowWithLookups FollowCost `json:"follower_requests_with_lookups"`
	PageFetch         Fetch      `json:"page_fetch"`
}

// FollowCost is what a follower asked of storage while the lag was
// measured, by kind, and what that would cost at S3 Standard's request
// prices (see listPrice): LISTs are billed as PUTs, every GET alike.
type FollowCost struct {
	Seconds         float64 `json:"seconds"`      // how long it followed
	Polls           float64 `json:"polls"`        // Seconds ÷ the poll interval
	Lists           int64   `json:"lists"`        // listings of a level or of objects
	LTXGets         int64   `json:"ltx_gets"`     // ranged GETs of LTX files (a probe for the next file included)
	ObjectGets      int64   `json:"object_gets"`  // object GETs answered with a body or not found
	NotModified     int64   `json:"not_modified"` // conditional object GETs answered 304
	Requests        int64   `json:"requests"`     // all of them
	RequestsPerPoll float64 `json:"requests_per_poll"`
	RequestsPerHour float64 `json:"requests_per_hour"`
	ListsPerHour    float64 `json:"lists_per_hour"`
	GetsPerHour     float64 `json:"gets_per_hour"`
	DollarsPerMonth float64 `json:"dollars_per_month"` // one reader following for 730 hours
}

// Setup is what was measured, and under which conditions.
type Setup struct {
	DatabaseBytes int64   `json:"database_bytes"`
	PageSize      int64   `json:"page_size"`
	Rows          int64   `json:"rows"` // items at the latest TXID before the lag measurement
	BuildMS       float64 `json:"build_ms"`
	ReplicateMS   float64 `json:"replicate_ms"`

	Replica        string         `json:"replica"`        // "temp directory" or the URL given, without credentials
	FilesByLevel   map[string]int `json:"files_by_level"` // "L0".."L9", and "hints": hint objects beside snapshots and compactions
	ReplicaBytes   int64          `json:"replica_bytes"`
	LatestTXID     uint64         `json:"latest_txid"`
	LatestPlan     []string       `json:"latest_plan"` // levels of the files of the latest TXID's plan: "L9", "L2", "L1", "L0 x40"
	LatencyMS      float64        `json:"latency_ms"`
	BandwidthBytes int64          `json:"bandwidth_bytes_per_sec"` // per request; 0 = unlimited
	CacheBytes     int64          `json:"cache_bytes"`
	Seed           uint64         `json:"seed"`
	Quick          bool           `json:"quick"`
	GoVersion      string         `json:"go_version"`
	CPUs           int            `json:"cpus"`
	// The machine's 1-minute load average when the run began and ended
	// (zero where the system does not tell): the share of the CPUs other
	// work took.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
	// HTTPServer is the web server of -serve-http ("nginx/1.22.1 at
	// http://127.0.0.1:PORT"), empty without it.
	HTTPServer string `json:"http_server,omitempty"`
}

// Cost is what one operation took: wall time and what it asked of storage
// (counted by wrap.Counting, including requests it left running in
// the background).
type Cost struct {
	MS           float64 `json:"ms"`
	Requests     int64   `json:"requests"`
	Lists        int64   `json:"lists"`
	Gets         int64   `json:"gets"`
	Bytes        int64   `json:"bytes"`
	RoundTrips   int     `json:"round_trips"`
	PeakInFlight int64   `json:"peak_in_flight"`
}

// Open is the cold opens made during the run (one per fresh reader at the
// latest TXID): the median and the slowest.
type Open struct {
	Count      int     `json:"count"`
	P50MS      float64 `json:"p50_ms"`
	MaxMS      float64 `json:"max_ms"`
	Requests   int64   `json:"requests"`    // of the median open
	RoundTrips int     `json:"round_trips"` // of the median open
	Bytes      int64   `json:"bytes"`       // of the median open
	All        []Cost  `json:"all"`
	// HeapBytes is how much the Go heap grew from before the first
	// reader's open to after its first lookup (after a collection each
	// time): its index, its SQLite connection and the pages it fetched.
	HeapBytes        int64   `json:"heap_bytes"`
	HeapBytesPerPage float64 `json:"heap_bytes_per_page"` // HeapBytes / database pages
}

// Lookups are cold point lookups of one kind on one fresh reader: the
// first after the open, then Count more, each of a row not read before.
type Lookups struct {
	First             Cost    `json:"first"`
	Count             int     `json:"count"`
	RequestsPerLookup float64 `json:"requests_per_lookup"`
	BytesPerLookup    float64 `json:"bytes_per_lookup"`
	P50MS             float64 `json:"p50_ms"`
	P99MS             float64 `json:"p99_ms"`
	MaxMS             float64 `json:"max_ms"`
	samples           []time.Duration
}

// Warm compares repeated lookups of the same rows through the ltx VFS
// and through the default VFS on the same database in a local file.
type Warm struct {
	Hot                   int     `json:"hot_rows"`
	LtxPerSec             float64 `json:"ltx_per_sec"`
	LocalPerSec           float64 `json:"local_per_sec"`
	LocalImmutablePerSec  float64 `json:"local_immutable_per_sec"`
	RatioVsLocal          float64 `json:"ratio_vs_local"`           // ltx / local
	RatioVsLocalImmutable float64 `json:"ratio_vs_local_immutable"` // ltx / local immutable=1
	// The same ratios from the median time of one lookup (local ÷ ltx):
	// lookups per second suffer from every pause a busy machine causes,
	// the median of thousands of lookups hardly.
	MedianRatioVsLocal          float64 `json:"median_ratio_vs_local"`
	MedianRatioVsLocalImmutable float64 `json:"median_ratio_vs_local_immutable"`
	LtxP50US                    float64 `json:"ltx_p50_us"` // one lookup, median
	LocalP50US                  float64 `json:"local_p50_us"`
	LocalImmutableP50US         float64 `json:"local_immutable_p50_us"`
	LtxRequests                 int64   `json:"ltx_requests"` // storage requests during the timed ltx runs
	LtxLookups                  int64   `json:"ltx_lookups"`
	samples                     map[string][]time.Duration
}

// Scan is a range or full scan on a fresh reader.
type Scan struct {
	Cost
	Rows         int64   `json:"rows"`            // in the range, whether or not the scan completed
	Complete     bool    `json:"complete"`        // false: cut at -scan-timeout
	PageBytes    int64   `json:"page_bytes"`      // database pages SQLite read through the VFS, in bytes
	MBPerSec     float64 `json:"mb_per_sec"`      // PageBytes per second, 10^6 bytes
	WireMBPerSec float64 `json:"wire_mb_per_sec"` // bytes from storage per second
	CacheBytes   int64   `json:"cache_bytes"`     // page cache held at the end
}

// LocalScan is the full scan on a local file: the median of a few runs,
// each on a fresh connection (SQLite's cache empty; the file in the OS's).
type LocalScan struct {
	MS       float64 `json:"ms"`
	MBPerSec float64 `json:"mb_per_sec"` // the ltx full scan's PageBytes per second
}

// TimeTravel is a fresh reader pinned at an old TXID: its open and a
// point lookup.
type TimeTravel struct {
	TXID      uint64 `json:"txid"`
	PlanFiles int    `json:"plan_files"`
	Open      Cost   `json:"open"`
	Lookup    Cost   `json:"lookup"`
}

// Lag is commit on the primary → visible to a following reader.
type Lag struct {
	Commits               int     `json:"commits"`
	SyncMS                float64 `json:"sync_interval_ms"`
	PollMS                float64 `json:"poll_interval_ms"`
	P50MS                 float64 `json:"p50_ms"`
	P99MS                 float64 `json:"p99_ms"`
	MaxMS                 float64 `json:"max_ms"`
	CommitToUploadP50MS   float64 `json:"commit_to_upload_p50_ms"`
	CommitToUploadP99MS   float64 `json:"commit_to_upload_p99_ms"`
	UploadToVisibleP50MS  float64 `json:"upload_to_visible_p50_ms"`
	UploadToVisibleP99MS  float64 `json:"upload_to_visible_p99_ms"`
	samples, upload, seen []time.Duration
}

// Latency is a distribution of durations.
type Latency struct {
	Count   int     `json:"count"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	P999MS  float64 `json:"p999_ms"`
	MaxMS   float64 `json:"max_ms"`
	samples []time.Duration
}

// Fetch is the ranged GETs of the cold measurements: the whole GET, from
// the call to the end of its body (as fast as the VFS consumed it), and
// the time to its response (the first byte: the body can be read).
type Fetch struct {
	Latency
	FirstByteP50MS float64 `json:"first_byte_p50_ms"`
	FirstByteP99MS float64 `json:"first_byte_p99_ms"`
	MeanBytes      int64   `json:"mean_bytes"`
}

func newFetch(spans []span) Fetch {
	var whole, first []time.Duration
	var bytes int64
	for _, s := range spans {
		whole = append(whole, s.end.Sub(s.start))
		if !s.first.IsZero() {
			first = append(first, s.first.Sub(s.start))
		}
		bytes += s.bytes
	}
	f := Fetch{Latency: newLatency(whole), FirstByteP50MS: ms(percentile(first, 0.5)), FirstByteP99MS: ms(percentile(first, 0.99))}
	if len(spans) > 0 {
		f.MeanBytes = bytes / int64(len(spans))
	}
	return f
}

// Restore is writer.Restore of the latest TXID through the same injected
// latency, for comparison with reading in place.
type Restore struct {
	Cost
	TXID          uint64 `json:"txid"`
	Files         int    `json:"files"`
	MatchesSource bool   `json:"matches_source"` // every row equals the primary's
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// percentile is the nearest-rank percentile p (0..1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func newLatency(ds []time.Duration) Latency {
	return Latency{
		Count: len(ds), P50MS: ms(percentile(ds, 0.5)), P99MS: ms(percentile(ds, 0.99)),
		P999MS: ms(percentile(ds, 0.999)), MaxMS: ms(percentile(ds, 1)), samples: ds,
	}
}

func (r *Result) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write -json %s: %w", path, err)
	}
	return nil
}
