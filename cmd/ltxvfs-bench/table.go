package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// printTable writes the figures as an aligned table, setup first.
func printTable(w io.Writer, res *Result) {
	s := res.Setup
	fmt.Fprintf(w, "ltxvfs-bench  %s  %s, %d CPUs\n\n", res.StartedAt.Format("2006-01-02 15:04 UTC"), s.GoVersion, s.CPUs)
	built := "taken with -db"
	if s.BuildMS > 0 {
		built = "built in " + fmtMS(s.BuildMS)
	}
	fmt.Fprintf(w, "database  %s, %s items, %d-byte pages (%s, replicated in %s)\n",
		formatBytes(s.DatabaseBytes), thousands(s.Rows), s.PageSize, built, fmtMS(s.ReplicateMS))
	fmt.Fprintf(w, "replica   %s: %d files (%s), %s, TXID %d; latest plan %s\n",
		s.Replica, totalFiles(s.FilesByLevel), levelCounts(s.FilesByLevel), formatBytes(s.ReplicaBytes), s.LatestTXID, strings.Join(s.LatestPlan, " + "))
	fmt.Fprintf(w, "storage   %s; page cache %s per reader\n", describeStorage(s), formatBytes(s.CacheBytes))
	if s.HTTPServer != "" {
		fmt.Fprintf(w, "http      %s, serving the same replica (same injected latency)\n", s.HTTPServer)
	}
	fmt.Fprintf(w, "load      %.2f at the start, %.2f at the end (1-minute load average, %d CPUs)\n\n", s.LoadStart, s.LoadEnd, s.CPUs)

	// Every row has every column, so that tabwriter aligns them all; the
	// padding of empty trailing cells is trimmed afterwards.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	row := func(cols ...string) {
		cols = append(cols, make([]string, 6-len(cols))...)
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	cost := func(what string, c Cost, rate string) {
		row(what, fmtMS(c.MS), strconv.FormatInt(c.Requests, 10), strconv.Itoa(c.RoundTrips), formatBytes(c.Bytes), rate)
	}
	lookups := func(kind string, l Lookups) {
		cost("first lookup by "+kind, l.First, "")
		row(fmt.Sprintf("cold lookups by %s (%d)", kind, l.Count), fmt.Sprintf("p50 %s, p99 %s", fmtMS(l.P50MS), fmtMS(l.P99MS)),
			fmt.Sprintf("%.2f each", l.RequestsPerLookup), "", formatBytes(int64(l.BytesPerLookup))+" each", "")
	}
	scan := func(what string, sc Scan) {
		rate := fmt.Sprintf("%.1f MB/s (wire %.1f)", sc.MBPerSec, sc.WireMBPerSec)
		if !sc.Complete {
			rate += ", cut at -scan-timeout"
		}
		cost(fmt.Sprintf("%s (%s rows)", what, thousands(sc.Rows)), sc.Cost, rate)

	}

	row("", "time", "requests", "round trips", "bytes", "rate")
	o := res.ColdOpen
	row(fmt.Sprintf("cold open (median of %d)", o.Count), fmt.Sprintf("%s (max %s)", fmtMS(o.P50MS), fmtMS(o.MaxMS)),
		strconv.FormatInt(o.Requests, 10), strconv.Itoa(o.RoundTrips), formatBytes(o.Bytes),
		fmt.Sprintf("heap +%s (%.0f B per page)", formatBytes(o.HeapBytes), o.HeapBytesPerPage))
	cost("  after a restart, diskcache=", res.DiskRestart, "the page indexes from the disk tier")
	lookups("rowid", res.RowidLookup)
	lookups("index", res.IndexLookup)
	wm := res.Warm
	row(fmt.Sprintf("warm lookups (%d rows), ltx", wm.Hot), fmtMS(wm.LtxP50US/1e3), strconv.FormatInt(wm.LtxRequests, 10), "", "", fmt.Sprintf("%s/s", thousands(int64(wm.LtxPerSec))))
	row("  same, local file", fmtMS(wm.LocalP50US/1e3), "", "", "", fmt.Sprintf("%s/s (ltx %.2fx; by median time %.2fx)", thousands(int64(wm.LocalPerSec)), wm.RatioVsLocal, wm.MedianRatioVsLocal))
	row("  same, local immutable=1", fmtMS(wm.LocalImmutableP50US/1e3), "", "", "", fmt.Sprintf("%s/s (ltx %.2fx; by median time %.2fx)", thousands(int64(wm.LocalImmutablePerSec)), wm.RatioVsLocalImmutable, wm.MedianRatioVsLocalImmutable))
	scan("range scan", res.RangeScan)
	scan("index range scan", res.IndexRange)
	scan("join with customers", res.Join)
	scan("full scan", res.FullScan)
	if ls := res.LocalScan; ls.MBPerSec > 0 {
		row("  same, local immutable=1", fmtMS(ls.MS), "", "", "", fmt.Sprintf("%.1f MB/s (ltx %.2fx)", ls.MBPerSec, res.FullScan.MBPerSec/ls.MBPerSec))
	}
	tt := res.TimeTravel
	cost(fmt.Sprintf("time travel: open at TXID %d", tt.TXID), tt.Open, fmt.Sprintf("plan of %d files", tt.PlanFiles))
	cost("  first lookup there", tt.Lookup, "")
	l := res.Lag
	row(fmt.Sprintf("follower lag (%d commits)", l.Commits), fmt.Sprintf("p50 %s, p99 %s", fmtMS(l.P50MS), fmtMS(l.P99MS)), "", "", "",
		fmt.Sprintf("sync every %s, poll every %s", fmtMS(l.SyncMS), fmtMS(l.PollMS)))
	row("  of which commit -> upload", fmt.Sprintf("p50 %s, p99 %s", fmtMS(l.CommitToUploadP50MS), fmtMS(l.CommitToUploadP99MS)), "", "", "", "")
	row("  of which upload -> visible", fmt.Sprintf("p50 %s, p99 %s", fmtMS(l.UploadToVisibleP50MS), fmtMS(l.UploadToVisibleP99MS)), "", "", "", "")
	p := res.PageFetch
	row(fmt.Sprintf("page fetch (%s GETs)", thousands(int64(p.Count))), fmt.Sprintf("p50 %s, p99 %s, p999 %s", fmtMS(p.P50MS), fmtMS(p.P99MS), fmtMS(p.P999MS)), "", "", formatBytes(p.MeanBytes)+" each", "")
	row("  of which to the first byte", fmt.Sprintf("p50 %s, p99 %s", fmtMS(p.FirstByteP50MS), fmtMS(p.FirstByteP99MS)))
	r := res.Restore
	verdict := "equals the primary"
	if !r.MatchesSource {
		verdict = "DIFFERS from the primary"
	}
	cost(fmt.Sprintf("full restore (%d files)", r.Files), r.Cost, verdict)
	tw.Flush()
	writeTrimmed(w, &buf)
	printFollowers(w, res)
}

// writeTrimmed writes what a tabwriter wrote, without the padding of
// empty trailing cells.
func writeTrimmed(w io.Writer, buf *bytes.Buffer) {
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		io.WriteString(w, strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			io.WriteString(w, "\n")
		}
	}
}

// printFollowers writes what each follower asked of storage while the
// lag was measured, by kind, and what it would cost on S3.
func printFollowers(w io.Writer, res *Result) {
	l := res.Lag
	fmt.Fprintf(w, "\nfollowers, all at once for %s (%d commits; writer syncing every %s, followers polling every %s);\n",
		fmtMS(res.Follow.Seconds*1e3), l.Commits, fmtMS(l.SyncMS), fmtMS(l.PollMS))
	fmt.Fprintf(w, "an idle follower's requests by kind, and its month at S3 Standard prices (LIST $%.3f, GET $%.4f per 1,000);\n", listPrice*1000, getPrice*1000)
	fmt.Fprintf(w, "the lag is the prober's, beside it, whose lookups of each new row also read its pages (with lookups: its requests per poll):\n\n")
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "replica\tLIST\tLTX GET\tobject GET\t304\tper poll\tper hour\t$/month\twith lookups\tlag p50\tlag p99\t")
	for _, name := range []string{targetOurs, targetNoManifest, targetLitestream, targetHTTP} {
		f := res.of(name)
		if f == nil || f.Lag.Commits == 0 {
			continue
		}
		c := f.Follow
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.2f\t%s\t%.2f\t%.2f\t%s\t%s\t\n", name, c.Lists, c.LTXGets, c.ObjectGets, c.NotModified,
			c.RequestsPerPoll, thousands(int64(c.RequestsPerHour+0.5)), c.DollarsPerMonth, f.FollowWithLookups.RequestsPerPoll, fmtMS(f.Lag.P50MS), fmtMS(f.Lag.P99MS))
	}
	tw.Flush()
	writeTrimmed(w, &buf)
}

func describeStorage(s Setup) string {
	if s.LatencyMS == 0 && s.BandwidthBytes == 0 {
		return "no injected latency"
	}
	bw := "unlimited bandwidth"
	if s.BandwidthBytes > 0 {
		bw = fmt.Sprintf("%s MB/s per request", strconv.FormatFloat(float64(s.BandwidthBytes)/1e6, 'f', -1, 64))
	}
	return fmt.Sprintf("%s first byte, %s (injected)", fmtMS(s.LatencyMS), bw)
}

func totalFiles(by map[string]int) int {
	n := 0
	for _, c := range by {
		n += c
	}
	return n
}

func levelCounts(by map[string]int) string {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, by[k])
	}
	return strings.Join(parts, ", ")
}

// fmtMS prints milliseconds at a useful precision: 27 µs, 3.7 ms, 520 ms,
// 7.4 s.
func fmtMS(v float64) string {
	d := time.Duration(v * 1e6)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", v*1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", v)
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f s", v/1e3)
}
