package main

import (
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// The chart: latency distributions (CDFs on a log axis) above, one point
// lookup cold and warm (bars on a log axis) below. Hand-written SVG, no
// dependency.
const (
	svgW       = 900
	svgMarginL = 210
	svgMarginR = 40
	cdfTop     = 96
	cdfH       = 300
	legendTop  = cdfTop + cdfH + 36
	barTop     = legendTop + 3*16 + 56
	barH       = 26
	barGap     = 8
)

var svgColors = []string{"#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#7f7f7f", "#9467bd"}

type series struct {
	name    string
	samples []time.Duration
}

type bar struct {
	name  string
	value time.Duration
	note  string
	color string
}

// writeSVG draws the run's latency distributions and cold/warm comparison.
func writeSVG(path string, res *Result) error {
	if err := os.WriteFile(path, []byte(renderSVG(res)), 0o644); err != nil {
		return fmt.Errorf("write -svg %s: %w", path, err)
	}
	return nil
}

func renderSVG(res *Result) string {
	curves := []series{
		{"page fetch (one GET)", res.PageFetch.samples},
		{"cold lookup by rowid", res.RowidLookup.samples},
		{"cold lookup by index", res.IndexLookup.samples},
		{"warm lookup, ltx", res.Warm.samples["ltx"]},
		{"warm lookup, local immutable=1", res.Warm.samples["local immutable"]},
		{"follower lag", res.Lag.samples},
	}
	us := func(v float64) time.Duration { return time.Duration(v * 1e3) }
	msd := func(v float64) time.Duration { return time.Duration(v * 1e6) }
	bars := []bar{
		{"first lookup after open (rowid)", msd(res.RowidLookup.First.MS), plural(res.RowidLookup.First.Requests, "request"), svgColors[1]},
		{"cold, by rowid (p50)", msd(res.RowidLookup.P50MS), fmt.Sprintf("%.2f requests", res.RowidLookup.RequestsPerLookup), svgColors[1]},
		{"cold, by index (p50)", msd(res.IndexLookup.P50MS), fmt.Sprintf("%.2f requests", res.IndexLookup.RequestsPerLookup), svgColors[2]},
		{"warm, ltx (p50)", us(res.Warm.LtxP50US), fmt.Sprintf("%s/s", thousands(int64(res.Warm.LtxPerSec))), svgColors[3]},
		{"warm, local file (p50)", us(res.Warm.LocalP50US), fmt.Sprintf("%s/s", thousands(int64(res.Warm.LocalPerSec))), svgColors[4]},
		{"warm, local immutable=1", us(res.Warm.LocalImmutableP50US), fmt.Sprintf("%s/s", thousands(int64(res.Warm.LocalImmutablePerSec))), svgColors[4]},
	}

	height := barTop + len(bars)*(barH+barGap) + 60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", svgW, height, svgW, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	s := res.Setup
	svgText(&b, 20, 28, "start", "bold", 16, fmt.Sprintf("ltxvfs-bench: a %s database in a replica of %d files", formatBytes(s.DatabaseBytes), totalFiles(s.FilesByLevel)))
	svgText(&b, 20, 48, "start", "", 12, fmt.Sprintf("Storage: %s. Latest plan: %s.", describeStorage(s), strings.Join(s.LatestPlan, " + ")))
	svgText(&b, 20, 64, "start", "", 12, fmt.Sprintf("Run %s, %s, %d CPUs.", res.StartedAt.Format("2006-01-02 15:04 UTC"), s.GoVersion, s.CPUs))

	// Latency distributions.
	lo, hi := axisRange(curves, bars)
	plotW := float64(svgW - svgMarginL - svgMarginR)
	x := func(d time.Duration) float64 {
		v := math.Max(float64(d), lo)
		return svgMarginL + (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*plotW
	}
	svgText(&b, svgMarginL, cdfTop-10, "start", "bold", 13, "Latency distributions: fraction of operations done within a time (log scale)")
	for i := 0; i <= 4; i++ {
		y := cdfTop + float64(cdfH)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", svgMarginL, y, svgW-svgMarginR, y)
		svgText(&b, svgMarginL-6, y+4, "end", "", 11, fmt.Sprintf("%d%%", 100-25*i))
	}
	decades(&b, lo, hi, x, cdfTop, cdfTop+cdfH)
	for i, c := range curves {
		if len(c.samples) == 0 {
			continue
		}
		color := svgColors[i%len(svgColors)]
		sorted := slices.Clone(c.samples)
		slices.Sort(sorted)
		pts := []string{fmt.Sprintf("%.1f,%d", x(sorted[0]), cdfTop+cdfH)}
		step := max(1, len(sorted)/400)
		for j := 0; j < len(sorted); j += step {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(sorted[j]), cdfTop+float64(cdfH)*(1-float64(j+1)/float64(len(sorted)))))
		}
		last := sorted[len(sorted)-1]
		pts = append(pts, fmt.Sprintf("%.1f,%d", x(last), cdfTop))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		lx, ly := float64(svgMarginL+(i/3)*340), float64(legendTop+(i%3)*16)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", lx, ly, lx+20, ly, color)
		svgText(&b, lx+26, ly+4, "start", "", 11, fmt.Sprintf("%s (n=%s, p50 %s)", c.name, thousands(int64(len(sorted))), fmtMS(ms(percentile(sorted, 0.5)))))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", svgMarginL, cdfTop, plotW, cdfH)

	// One point lookup, cold and warm.
	svgText(&b, svgMarginL, barTop-40, "start", "bold", 13, "One point lookup: cold (behind the injected latency) and warm (log scale)")
	svgText(&b, svgMarginL, barTop-24, "start", "", 12, fmt.Sprintf("warm lookups/s through ltx: %.2fx the local file, %.2fx immutable=1 (by median time: %.2fx, %.2fx)",
		res.Warm.RatioVsLocal, res.Warm.RatioVsLocalImmutable, res.Warm.MedianRatioVsLocal, res.Warm.MedianRatioVsLocalImmutable))
	decades(&b, lo, hi, x, barTop-8, barTop+len(bars)*(barH+barGap))
	for i, br := range bars {
		y := barTop + i*(barH+barGap)
		w := math.Max(1, x(br.value)-svgMarginL)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.85"/>`+"\n", svgMarginL, y, w, barH, br.color)
		svgText(&b, svgMarginL-6, float64(y+barH/2+4), "end", "", 12, br.name)
		svgText(&b, svgMarginL+w+6, float64(y+barH/2+4), "start", "", 12, fmt.Sprintf("%s  (%s)", fmtMS(ms(br.value)), br.note))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// axisRange spans whole decades around every sample and bar.
func axisRange(curves []series, bars []bar) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	see := func(d time.Duration) {
		if d > 0 {
			lo, hi = math.Min(lo, float64(d)), math.Max(hi, float64(d))
		}
	}
	for _, c := range curves {
		for _, d := range c.samples {
			see(d)
		}
	}
	for _, br := range bars {
		see(br.value)
	}
	if math.IsInf(lo, 1) {
		return 1e3, 1e9
	}
	lo = math.Pow(10, math.Floor(math.Log10(math.Max(lo, 1e3))))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

// decades draws a vertical grid line and a label at every power of ten.
func decades(b *strings.Builder, lo, hi float64, x func(time.Duration) float64, top, bottom int) {
	for v := lo; v <= hi*1.001; v *= 10 {
		xv := x(time.Duration(v))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", xv, top, xv, bottom)
		svgText(b, xv, float64(bottom+14), "middle", "", 11, axisLabel(time.Duration(v)))
	}
}

func svgText(b *strings.Builder, x, y float64, anchor, weight string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d"`, x, y, anchor, size)
	if weight != "" {
		fmt.Fprintf(b, ` font-weight="%s"`, weight)
	}
	b.WriteString(">")
	xml.EscapeText(b, []byte(s))
	b.WriteString("</text>\n")
}

// axisLabel names a power of ten of nanoseconds: 10 µs, 1 ms, 10 s.
func axisLabel(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
