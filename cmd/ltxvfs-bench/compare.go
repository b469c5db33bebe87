package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// figure is one headline number, for comparing a run with a baseline and
// one kind of replica with another.
type figure struct {
	name   string
	unit   string
	higher bool // higher is better
	part   part // the measurement it comes from
	get    func(*Result) float64
}

// part is a measurement that a kind of replica may not have had (see
// Result): its figures are compared only where both sides have it.
type part func(*Result) bool

var (
	opened      part = func(r *Result) bool { return r.ColdOpen.Count > 0 }
	rowidRead   part = func(r *Result) bool { return r.RowidLookup.Count > 0 }
	byIdx       part = func(r *Result) bool { return r.IndexLookup.Count > 0 }
	warmed      part = func(r *Result) bool { return r.Warm.LtxLookups > 0 }
	ranged      part = func(r *Result) bool { return r.RangeScan.Rows > 0 }
	indexRanged part = func(r *Result) bool { return r.IndexRange.Rows > 0 }
	joined      part = func(r *Result) bool { return r.Join.Rows > 0 }
	scanned     part = func(r *Result) bool { return r.FullScan.Rows > 0 }
	travelled   part = func(r *Result) bool { return r.TimeTravel.TXID > 0 }
	followed    part = func(r *Result) bool { return r.Lag.Commits > 0 }
	fetched     part = func(r *Result) bool { return r.PageFetch.Count > 0 }
	restored    part = func(r *Result) bool { return r.Restore.TXID > 0 }
	restarted   part = func(r *Result) bool { return r.DiskRestart.Requests > 0 }
)

var headline = []figure{
	{"cold open", "ms", false, opened, func(r *Result) float64 { return r.ColdOpen.P50MS }},
	{"cold open", "requests", false, opened, func(r *Result) float64 { return float64(r.ColdOpen.Requests) }},
	{"cold open", "round trips", false, opened, func(r *Result) float64 { return float64(r.ColdOpen.RoundTrips) }},
	{"cold open heap", "B/page", false, func(r *Result) bool { return r.ColdOpen.HeapBytes > 0 }, func(r *Result) float64 { return r.ColdOpen.HeapBytesPerPage }},
	{"open after a restart, diskcache=", "round trips", false, restarted, func(r *Result) float64 { return float64(r.DiskRestart.RoundTrips) }},
	{"first lookup by rowid", "requests", false, rowidRead, func(r *Result) float64 { return float64(r.RowidLookup.First.Requests) }},
	{"cold lookup by rowid", "requests", false, rowidRead, func(r *Result) float64 { return r.RowidLookup.RequestsPerLookup }},
	{"cold lookup by rowid p50", "ms", false, rowidRead, func(r *Result) float64 { return r.RowidLookup.P50MS }},
	{"cold lookup by rowid p99", "ms", false, rowidRead, func(r *Result) float64 { return r.RowidLookup.P99MS }},
	{"first lookup by index", "requests", false, byIdx, func(r *Result) float64 { return float64(r.IndexLookup.First.Requests) }},
	{"cold lookup by index", "requests", false, byIdx, func(r *Result) float64 { return r.IndexLookup.RequestsPerLookup }},
	{"cold lookup by index p50", "ms", false, byIdx, func(r *Result) float64 { return r.IndexLookup.P50MS }},
	{"warm lookups, ltx", "/s", true, warmed, func(r *Result) float64 { return r.Warm.LtxPerSec }},
	{"warm ltx / local", "x", true, warmed, func(r *Result) float64 { return r.Warm.RatioVsLocal }},
	{"warm ltx / local immutable=1", "x", true, warmed, func(r *Result) float64 { return r.Warm.RatioVsLocalImmutable }},
	{"warm, by median time / immutable=1", "x", true, warmed, func(r *Result) float64 { return r.Warm.MedianRatioVsLocalImmutable }},
	{"range scan", "MB/s", true, ranged, func(r *Result) float64 { return r.RangeScan.MBPerSec }},
	{"range scan", "requests", false, ranged, func(r *Result) float64 { return float64(r.RangeScan.Requests) }},
	{"index range scan", "MB/s", true, indexRanged, func(r *Result) float64 { return r.IndexRange.MBPerSec }},
	{"index range scan", "round trips", false, indexRanged, func(r *Result) float64 { return float64(r.IndexRange.RoundTrips) }},
	{"join", "ms", false, joined, func(r *Result) float64 { return r.Join.MS }},
	{"full scan", "MB/s", true, scanned, func(r *Result) float64 { return r.FullScan.MBPerSec }},
	{"time travel open", "ms", false, travelled, func(r *Result) float64 { return r.TimeTravel.Open.MS }},
	{"time travel open", "requests", false, travelled, func(r *Result) float64 { return float64(r.TimeTravel.Open.Requests) }},
	{"follower lag p50", "ms", false, followed, func(r *Result) float64 { return r.Lag.P50MS }},
	{"follower lag p99", "ms", false, followed, func(r *Result) float64 { return r.Lag.P99MS }},
	{"upload -> visible p99", "ms", false, followed, func(r *Result) float64 { return r.Lag.UploadToVisibleP99MS }},
	{"follower requests per poll", "", false, followed, func(r *Result) float64 { return r.Follow.RequestsPerPoll }},
	{"follower LISTs per hour", "", false, followed, func(r *Result) float64 { return r.Follow.ListsPerHour }},
	{"follower GETs per hour", "", false, followed, func(r *Result) float64 { return r.Follow.GetsPerHour }},
	{"follower per reader-month", "$", false, followed, func(r *Result) float64 { return r.Follow.DollarsPerMonth }},
	{"page fetch p50", "ms", false, fetched, func(r *Result) float64 { return r.PageFetch.P50MS }},
	{"page fetch p99", "ms", false, fetched, func(r *Result) float64 { return r.PageFetch.P99MS }},
	{"page fetch first byte p99", "ms", false, fetched, func(r *Result) float64 { return r.PageFetch.FirstByteP99MS }},
	{"full restore", "ms", false, restored, func(r *Result) float64 { return r.Restore.MS }},
}

// readBaseline loads the -json of an earlier run.
func readBaseline(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-baseline: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("-baseline %s: not the -json of ltxvfs-bench: %w", path, err)
	}
	if r.Version != 1 {
		return nil, fmt.Errorf("-baseline %s: layout version %d, this harness writes version 1", path, r.Version)
	}
	return &r, nil
}

// printComparison writes the headline figures of a run beside a
// baseline's: before, now, and now ÷ before, marked better or worse when
// they moved by more than 5%.
func printComparison(w io.Writer, before, now *Result, path string) {
	fmt.Fprintf(w, "\ncompared with %s (run %s):\n\n", path, before.StartedAt.Format("2006-01-02 15:04 UTC"))
	if before.Setup.DatabaseBytes != now.Setup.DatabaseBytes || before.Setup.LatencyMS != now.Setup.LatencyMS || before.Setup.BandwidthBytes != now.Setup.BandwidthBytes {
		fmt.Fprintf(w, "(different setups: %s at %s then, %s at %s now)\n\n",
			formatBytes(before.Setup.DatabaseBytes), describeStorage(before.Setup), formatBytes(now.Setup.DatabaseBytes), describeStorage(now.Setup))
	}
	printPair(w, "before", "now", before, now)
}

// printSideBySide writes the headline figures of two kinds of replica of
// one run (see Result.of), those both had: a's, b's, and b ÷ a.
func printSideBySide(w io.Writer, a, b string, res *Result) {
	ra, rb := res.view(a), res.view(b)
	fmt.Fprintf(w, "\n%s beside %s (same run):\n\n", b, a)
	printPair(w, a, b, ra, rb)
}

// view is the run as one kind of replica saw it: its figures, and the
// restore and the restart for ours.
func (r *Result) view(name string) *Result {
	if name == targetOurs {
		return r
	}
	v := &Result{Setup: r.Setup}
	if f := r.of(name); f != nil {
		v.Figures = *f
	}
	return v
}

// printPair writes the headline figures that both results have: x's, y's,
// and y ÷ x, marked better or worse when they differ by more than 5%.
func printPair(w io.Writer, xName, yName string, x, y *Result) {
	width := 0
	for _, f := range headline {
		width = max(width, len(f.name)+len(f.unit)+3)
	}
	// Numbers align right; the names, padded to one width, stay left.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s/%s\t\t\n", width, "", xName, yName, yName, xName)
	for _, f := range headline {
		if !f.part(x) || !f.part(y) {
			continue
		}
		b, n := f.get(x), f.get(y)
		ratio, mark := "", ""
		if b > 0 {
			ratio = strconv.FormatFloat(n/b, 'f', 2, 64) + "x"
			// Changes within 5% are noise on a shared machine.
			if r := n / b; r > 1.05 || r < 1/1.05 {
				mark = "worse"
				if (n > b) == f.higher {
					mark = "better"
				}
			}
		}
		name := f.name
		if f.unit != "" {
			name += " (" + f.unit + ")"
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t\n", width, name, num(b), num(n), ratio, mark)
	}
	tw.Flush()
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

func num(f float64) string {
	switch {
	case f == float64(int64(f)):
		return thousands(int64(f))
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}
