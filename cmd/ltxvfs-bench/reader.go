package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ltxvfs/ltxvfs/storage/wrap"
	"github.com/ltxvfs/ltxvfs/vfs"
)

// reader is one fresh reader of the replica: its own attached name, so its
// own index and page cache (nothing warm from an earlier measurement), one
// connection, and a metrics registry of its own.
type reader struct {
	name string
	db   *sql.DB
	conn *sql.Conn
	reg  *prometheus.Registry
}

// openReader attaches the replica under a new name through the current
// target's recording, counting, latency-injecting client and opens a
// connection with params (such as "&txid=12"). The open is measured up to
// a connection that has read the schema, as any first query must.
func (b *bench) openReader(ctx context.Context, poll time.Duration, params string) (*reader, Cost, error) {
	return b.openReaderOn(ctx, b.cur, poll, params, "")
}

// openReaderOn opens a reader of target t, measured on t's counters; with
// diskDir, the reader keeps a disk tier there (vfs.Options.DiskCacheDir).
func (b *bench) openReaderOn(ctx context.Context, t *target, poll time.Duration, params, diskDir string) (*reader, Cost, error) {
	b.attached++
	r := &reader{name: fmt.Sprintf("ltxvfs-bench-%d-%d", os.Getpid(), b.attached), reg: prometheus.NewRegistry()}
	err := vfs.Attach(r.name, vfs.Options{Client: t.rec, CacheBytes: b.cfg.cacheBytes, Poll: poll, Logger: b.log, Registerer: r.reg, DiskCacheDir: diskDir})
	if err != nil {
		return nil, Cost{}, err
	}
	if r.db, err = sql.Open("sqlite3", "file:"+r.name+"?vfs=ltx"+params); err != nil {
		vfs.Detach(r.name)
		return nil, Cost{}, err
	}
	r.db.SetMaxOpenConns(1)
	cost, err := b.measureOn(t, func() error {
		if r.conn, err = r.db.Conn(ctx); err != nil {
			return err
		}
		var n int
		return r.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n)
	})
	if err != nil {
		r.close()
		return nil, Cost{}, fmt.Errorf("open the %s replica through the ltx VFS%s: %w", t.name, params, err)
	}
	return r, cost, nil
}

func (r *reader) close() {
	if r.conn != nil {
		r.conn.Close()
	}
	r.db.Close()
	vfs.Detach(r.name)
}

// pageReads is how many pages SQLite has read through the VFS.
func (r *reader) pageReads() int64 { return int64(r.metric("ltxvfs_page_reads_total")) }

// cacheBytes is what the reader's page cache holds.
func (r *reader) cacheBytes() int64 { return int64(r.metric("ltxvfs_cache_bytes")) }

func (r *reader) metric(name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
		return sum
	}
	return 0
}

// measure runs f and reports its wall time and what it asked of storage
// through the current target.
func (b *bench) measure(f func() error) (Cost, error) { return b.measureOn(b.cur, f) }

// measureOn runs f and reports its wall time and what it asked of storage
// through t. Requests the VFS left running in the background (prefetch)
// are waited for and charged to f, so that the next measurement starts
// from quiet.
func (b *bench) measureOn(t *target, f func() error) (Cost, error) {
	t.settle()
	t.counting.Reset()
	mark := t.rec.mark()
	start := time.Now()
	err := f()
	took := time.Since(start)
	t.settle()
	spans := t.rec.since(mark)
	t.fetches = append(t.fetches, gets(spans)...)
	return newCost(took, t.counting.Counts(), spans), err
}

// newCost is an operation's Cost from its wall time, its counts and its
// requests' spans.
func newCost(took time.Duration, c wrap.Counts, spans []span) Cost {
	return Cost{
		MS: ms(took), Requests: c.Requests(), Lists: c.Lists, Gets: c.Opens, Bytes: c.BytesRead,
		RoundTrips: roundTrips(spans), PeakInFlight: c.PeakInFlight,
	}
}

// settle waits, up to a few seconds, until no request of t's readers is in
// flight.
func (t *target) settle() {
	deadline := time.Now().Add(5 * time.Second)
	for t.counting.Counts().InFlight > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
