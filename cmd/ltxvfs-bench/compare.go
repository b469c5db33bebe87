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

// figure is one headline number, for comparing a run with a baseline.
type figure struct {
	name   string
	unit   string
	higher bool // higher is better
	get    func(*Result) float64
}

var headline = []figure{
	{"cold open", "ms", false, func(r *Result) float64 { return r.ColdOpen.P50MS }},
	{"cold open", "requests", false, func(r *Result) float64 { return float64(r.ColdOpen.Requests) }},
	{"cold open", "round trips", false, func(r *Result) float64 { return float64(r.ColdOpen.RoundTrips) }},
	{"cold open heap", "B/page", false, func(r *Result) float64 { return r.ColdOpen.HeapBytesPerPage }},
	{"first lookup by rowid", "requests", false, func(r *Result) float64 { return float64(r.RowidLookup.First.Requests) }},
	{"cold lookup by rowid", "requests", false, func(r *Result) float64 { return r.RowidLookup.RequestsPerLookup }},
	{"cold lookup by rowid p50", "ms", false, func(r *Result) float64 { return r.RowidLookup.P50MS }},
	{"cold lookup by rowid p99", "ms", false, func(r *Result) float64 { return r.RowidLookup.P99MS }},
	{"first lookup by index", "requests", false, func(r *Result) float64 { return float64(r.IndexLookup.First.Requests) }},
	{"cold lookup by index", "requests", false, func(r *Result) float64 { return r.IndexLookup.RequestsPerLookup }},
	{"cold lookup by index p50", "ms", false, func(r *Result) float64 { return r.IndexLookup.P50MS }},
	{"warm lookups, ltx", "/s", true, func(r *Result) float64 { return r.Warm.LtxPerSec }},
	{"warm ltx / local", "x", true, func(r *Result) float64 { return r.Warm.RatioVsLocal }},
	{"warm ltx / local immutable=1", "x", true, func(r *Result) float64 { return r.Warm.RatioVsLocalImmutable }},
	{"warm, by median time / immutable=1", "x", true, func(r *Result) float64 { return r.Warm.MedianRatioVsLocalImmutable }},
	{"range scan", "MB/s", true, func(r *Result) float64 { return r.RangeScan.MBPerSec }},
	{"range scan", "requests", false, func(r *Result) float64 { return float64(r.RangeScan.Requests) }},
	{"join", "ms", false, func(r *Result) float64 { return r.Join.MS }},
	{"full scan", "MB/s", true, func(r *Result) float64 { return r.FullScan.MBPerSec }},
	{"time travel open", "ms", false, func(r *Result) float64 { return r.TimeTravel.Open.MS }},
	{"time travel open", "requests", false, func(r *Result) float64 { return float64(r.TimeTravel.Open.Requests) }},
	{"follower lag p50", "ms", false, func(r *Result) float64 { return r.Lag.P50MS }},
	{"follower lag p99", "ms", false, func(r *Result) float64 { return r.Lag.P99MS }},
	{"upload -> visible p99", "ms", false, func(r *Result) float64 { return r.Lag.UploadToVisibleP99MS }},
	{"page fetch p50", "ms", false, func(r *Result) float64 { return r.PageFetch.P50MS }},
	{"page fetch p99", "ms", false, func(r *Result) float64 { return r.PageFetch.P99MS }},
	{"page fetch first byte p99", "ms", false, func(r *Result) float64 { return r.PageFetch.FirstByteP99MS }},
	{"full restore", "ms", false, func(r *Result) float64 { return r.Restore.MS }},
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
	width := 0
	for _, f := range headline {
		width = max(width, len(f.name)+len(f.unit)+3)
	}
	// Numbers align right; the names, padded to one width, stay left.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tbefore\tnow\tnow/before\t\t\n", width, "")
	for _, f := range headline {
		b, n := f.get(before), f.get(now)
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
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t\n", width, f.name+" ("+f.unit+")", num(b), num(n), ratio, mark)
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
