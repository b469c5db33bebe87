package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// measureAll measures every kind of replica of the run, one after the
// other (the followers all at once): every figure on ours and on the
// Litestream-shaped replica, the open and the follower without the
// manifest, the open, lookups by rowid, the full scan and the follower
// over HTTP.
func (b *bench) measureAll(ctx context.Context, res *Result) (err error) {
	if err := b.coldSuite(ctx, b.ours, &res.Figures); err != nil {
		return err
	}
	b.prog.step("open after a restart with a disk tier")
	if res.DiskRestart, err = b.diskRestart(ctx); err != nil {
		return err
	}
	if b.litestream != nil {
		if err := b.coldSuite(ctx, b.litestream, res.Litestream); err != nil {
			return err
		}
	}
	b.prog.step("cold open without the manifest")
	if err := b.coldOpen(ctx, b.noManifest); err != nil {
		return err
	}
	if b.http != nil {
		b.cur = b.http
		b.prog.step("%s: cold point lookups by rowid", b.http.name)
		if res.HTTP.RowidLookup, err = b.coldLookups(ctx, byRowid); err != nil {
			return err
		}
		b.prog.step("%s: full scan (at most %s)", b.http.name, b.cfg.scanTimeout)
		if res.HTTP.FullScan, err = b.fullScan(ctx); err != nil {
			return err
		}
		res.HTTP.PageFetch = newFetch(b.http.fetches)
	}

	b.prog.step("full restore")
	var restored string
	if res.Restore, restored, err = b.restore(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	b.prog.step("full scan of the restored file, immutable=1")
	if res.LocalScan, err = b.localScan(ctx, restored, res.FullScan.PageBytes); err != nil {
		return err
	}
	warm := []struct {
		t *target
		f *Figures
	}{{b.ours, &res.Figures}, {b.litestream, res.Litestream}}
	for _, w := range warm {
		if w.t == nil {
			continue
		}
		b.cur = w.t
		b.prog.step("warm lookups: ltx (%s) against the restored file through the default VFS", w.t.name)
		if w.f.Warm, err = b.warmLookups(ctx, restored); err != nil {
			return err
		}
	}

	followers := []*target{b.ours, b.noManifest}
	figs := []*Figures{&res.Figures, res.NoManifest}
	for _, t := range []*target{b.litestream, b.http} {
		if t != nil {
			followers = append(followers, t)
			figs = append(figs, res.of(t.name))
		}
	}
	b.prog.step("followers (%s): at least %d commits and %s, writer syncing every %s, followers polling every %s",
		targetNames(followers), b.cfg.commits, b.cfg.follow, b.cfg.sync, b.cfg.poll)
	if err := b.follow(ctx, followers, figs); err != nil {
		return err
	}

	for _, t := range []*target{b.ours, b.noManifest, b.litestream, b.http} {
		if t != nil {
			b.summarize(t, res.of(t.name), res.Setup)
		}
	}
	return nil
}

// coldSuite measures every cold figure of a target: lookups, scans, the
// join, time travel, and the GETs they made.
func (b *bench) coldSuite(ctx context.Context, t *target, f *Figures) (err error) {
	b.cur = t
	b.prog.step("%s: cold point lookups by rowid", t.name)
	if f.RowidLookup, err = b.coldLookups(ctx, byRowid); err != nil {
		return err
	}
	b.prog.step("%s: cold point lookups by the secondary index", t.name)
	if f.IndexLookup, err = b.coldLookups(ctx, byIndex); err != nil {
		return err
	}
	b.prog.step("%s: range scan of %d rows", t.name, min(int64(b.cfg.rangeRows), b.h.rows))
	if f.RangeScan, err = b.rangeScan(ctx); err != nil {
		return err
	}
	b.prog.step("%s: index range scan", t.name)
	if f.IndexRange, err = b.indexRangeScan(ctx); err != nil {
		return err
	}
	b.prog.step("%s: join of %d items with their customers", t.name, min(max(int64(b.cfg.rangeRows)/10, 1), b.h.rows))
	if f.Join, err = b.join(ctx); err != nil {
		return err
	}
	b.prog.step("%s: full scan (at most %s)", t.name, b.cfg.scanTimeout)
	if f.FullScan, err = b.fullScan(ctx); err != nil {
		return err
	}
	b.prog.step("%s: time travel to TXID %d", t.name, b.h.old)
	if f.TimeTravel, err = b.timeTravel(ctx); err != nil {
		return err
	}
	f.PageFetch = newFetch(t.fetches)
	return nil
}

// coldOpen opens a fresh reader of t and closes it: one more cold open.
func (b *bench) coldOpen(ctx context.Context, t *target) error {
	r, open, err := b.openReaderOn(ctx, t, noPoll, "", "")
	if err != nil {
		return err
	}
	r.close()
	t.opens = append(t.opens, open)
	return nil
}

// diskRestart opens our replica with a disk tier and looks a row up (its
// page indexes and pages go to disk), closes it as a stopped process
// would, and measures the open of a fresh reader on the same disk tier:
// what a restarted reader with diskcache= pays.
func (b *bench) diskRestart(ctx context.Context) (Cost, error) {
	dir := filepath.Join(b.work, "diskcache")
	first, _, err := b.openReaderOn(ctx, b.ours, noPoll, "", dir)
	if err != nil {
		return Cost{}, err
	}
	id := b.pickIDs(1, b.h.rows)[0]
	err = lookup(ctx, first.conn, byRowid, id)
	first.close()
	if err != nil {
		return Cost{}, err
	}
	again, open, err := b.openReaderOn(ctx, b.ours, noPoll, "", dir)
	if err != nil {
		return Cost{}, fmt.Errorf("open again with the disk tier: %w", err)
	}
	defer again.close()
	if err := lookup(ctx, again.conn, byRowid, id); err != nil {
		return Cost{}, fmt.Errorf("after a restart with the disk tier: %w", err)
	}
	return open, nil
}

// summarize fills in what a target's figures take from all its readers:
// the median cold open and the first reader's heap.
func (b *bench) summarize(t *target, f *Figures, s Setup) {
	f.ColdOpen = summarizeOpens(t.opens)
	f.ColdOpen.HeapBytes = t.openHeap
	if pages := s.DatabaseBytes / max(s.PageSize, 1); pages > 0 {
		f.ColdOpen.HeapBytesPerPage = round3(float64(t.openHeap) / float64(pages))
	}
}

// of returns the figures of the target named name.
func (r *Result) of(name string) *Figures {
	switch name {
	case targetNoManifest:
		return r.NoManifest
	case targetLitestream:
		return r.Litestream
	case targetHTTP:
		return r.HTTP
	}
	return &r.Figures
}

func targetNames(ts []*target) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return strings.Join(names, ", ")
}

// loadAverage is the machine's 1-minute load average, 0 where it cannot
// be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b) + " x")[0], 64)
	if err != nil {
		return 0
	}
	return f
}

// summarizeOpens reports the median and the slowest cold open.
func summarizeOpens(opens []Cost) Open {
	if len(opens) == 0 {
		return Open{}
	}
	sorted := slices.Clone(opens)
	slices.SortFunc(sorted, func(a, b Cost) int {
		switch {
		case a.MS < b.MS:
			return -1
		case a.MS > b.MS:
			return 1
		}
		return 0
	})
	mid := sorted[(len(sorted)-1)/2]
	return Open{
		Count: len(opens), P50MS: mid.MS, MaxMS: sorted[len(sorted)-1].MS,
		Requests: mid.Requests, RoundTrips: mid.RoundTrips, Bytes: mid.Bytes, All: opens,
	}
}
