package vfs

import (
	"context"
	"errors"
	"io"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// metrics are one replica's collectors, registered on the Registerer given
// to Attach and unregistered when the replica is released. Every series
// carries the label replica=<attached name>, never a URL, so no credential
// or endpoint detail can end up in a label value.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	pageReads prometheus.Counter
	requests  *prometheus.CounterVec // by op: list, read, write, delete, object_read, object_not_modified, object_write, object_list, object_delete
	bytes     prometheus.Counter
	fetch     prometheus.Histogram

	// What statements cost, as PRAGMA ltx_stats counts it (stats.go).
	roundTrips  prometheus.Counter
	diskHits    prometheus.Counter
	budgetStops *prometheus.CounterVec // by budget: max_requests, max_bytes
}

// newMetrics makes the collectors; register them once r's index and cache
// exist, which the func-backed ones read.
func newMetrics(reg prometheus.Registerer, name string, r *replica) *metrics {
	labels := prometheus.Labels{"replica": name}
	opts := func(n, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "ltxvfs", Name: n, Help: help, ConstLabels: labels}
	}
	m := &metrics{reg: reg}
	m.pageReads = prometheus.NewCounter(prometheus.CounterOpts(opts("page_reads_total", "Pages read by SQLite through the VFS.")))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts(opts("storage_requests_total", "Requests made to the replica's storage, by operation.")), []string{"op"})
	m.bytes = prometheus.NewCounter(prometheus.CounterOpts(opts("storage_read_bytes_total", "Bytes read from the replica's storage.")))
	m.fetch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ltxvfs", Name: "fetch_seconds", ConstLabels: labels,
		Help:    "Latency of one ranged read from storage, from the request to the end of its body.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. 16s
	})
	m.roundTrips = prometheus.NewCounter(prometheus.CounterOpts(opts("round_trips_total", "Times a statement waited for storage, one wait after another (reads in parallel count once).")))
	m.diskHits = prometheus.NewCounter(prometheus.CounterOpts(opts("disk_hits_total", "Page lookups of statements that missed the page cache and were served by the disk tier.")))
	m.budgetStops = prometheus.NewCounterVec(prometheus.CounterOpts(opts("budget_stops_total", "Statements stopped by their budget (max_requests=, max_bytes=), by budget.")), []string{"budget"})
	stat := func(f func() int64) func() float64 { return func() float64 { return float64(f()) } }
	m.collectors = []prometheus.Collector{
		m.pageReads, m.requests, m.bytes, m.fetch, m.roundTrips, m.diskHits, m.budgetStops,
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("cache_hits_total", "Page lookups served from the shared page cache.")),
			stat(func() int64 { return r.cache.Stats().Hits })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("cache_misses_total", "Page lookups that had to read storage.")),
			stat(func() int64 { return r.cache.Stats().Misses })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("cache_bytes", "Bytes of decoded pages held in the shared page cache.")),
			stat(func() int64 { return r.cache.Stats().UsedBytes })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("latest_txid", "Newest TXID the index has seen (0 before the first poll).")),
			func() float64 {
				if v := r.idx.Latest(); v != nil {
					return float64(v.TXID())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("oldest_pinned_txid", "Oldest TXID held by an open read transaction (0 when none is open).")),
			func() float64 { return float64(r.oldestPinned()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("lag_seconds", "Seconds since the newest TXID seen was committed (NaN before the first poll).")),
			func() float64 {
				if v := r.idx.Latest(); v != nil {
					return time.Since(v.Timestamp()).Seconds()
				}
				return math.NaN()
			}),
	}
	return m
}

func (m *metrics) register() error {
	for i, c := range m.collectors {
		if err := m.reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				m.reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// meteredClient counts the requests and bytes of a replica's client and
// times its ranged reads, for the metrics.
type meteredClient struct {
	storage.Client
	m *metrics
}

var (
	_ storage.Wrapper   = (*meteredClient)(nil)
	_ storage.AllLister = (*meteredClient)(nil)
)

func (c *meteredClient) Unwrap() storage.Client { return c.Client }

func (c *meteredClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	c.m.requests.WithLabelValues("list").Inc()
	return c.Client.LTXFiles(ctx, level, seek, useMetadata)
}

// AllLTXFiles counts one listing, or one per level where the client lists
// level by level (see storage.AllLister).
func (c *meteredClient) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(c.Client) {
		return storage.ListEachLevel(ctx, c, useMetadata, 0)
	}
	c.m.requests.WithLabelValues("list").Inc()
	return c.Client.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

func (c *meteredClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	c.m.requests.WithLabelValues("read").Inc()
	start := time.Now()
	rc, err := c.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
	if err != nil {
		c.m.fetch.Observe(time.Since(start).Seconds())
		return nil, err
	}
	return &meteredBody{rc: rc, m: c.m, start: start}, nil
}

func (c *meteredClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	c.m.requests.WithLabelValues("write").Inc()
	return c.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, r)
}

func (c *meteredClient) DeleteLTXFiles(ctx context.Context, files []*ltx.FileInfo) error {
	c.m.requests.WithLabelValues("delete").Inc()
	return c.Client.DeleteLTXFiles(ctx, files)
}

func (c *meteredClient) DeleteAll(ctx context.Context) error {
	c.m.requests.WithLabelValues("delete").Inc()
	return c.Client.DeleteAll(ctx)
}

// ReadObject counts a read answered 304 as op="object_not_modified", any
// other as op="object_read", so that the ops still add up to the requests.
func (c *meteredClient) ReadObject(ctx context.Context, name string, opts storage.ReadOptions) (io.ReadCloser, storage.ObjectInfo, error) {
	rc, info, err := c.Client.ReadObject(ctx, name, opts)
	if errors.Is(err, storage.ErrNotModified) {
		c.m.requests.WithLabelValues("object_not_modified").Inc()
		return nil, info, err
	}
	c.m.requests.WithLabelValues("object_read").Inc()
	if err != nil {
		return nil, info, err
	}
	return &countedBody{ReadCloser: rc, bytes: c.m.bytes}, info, nil
}

func (c *meteredClient) WriteObject(ctx context.Context, name string, r io.Reader, opts storage.WriteOptions) (storage.ObjectInfo, error) {
	c.m.requests.WithLabelValues("object_write").Inc()
	return c.Client.WriteObject(ctx, name, r, opts)
}

func (c *meteredClient) ListObjects(ctx context.Context, dir string) ([]storage.ObjectInfo, error) {
	c.m.requests.WithLabelValues("object_list").Inc()
	return c.Client.ListObjects(ctx, dir)
}

func (c *meteredClient) DeleteObjects(ctx context.Context, names []string) error {
	c.m.requests.WithLabelValues("object_delete").Inc()
	return c.Client.DeleteObjects(ctx, names)
}

// countedBody adds what is read from an object's body to the bytes read;
// unlike a ranged read's, its latency is not a page fetch's.
type countedBody struct {
	io.ReadCloser
	bytes prometheus.Counter
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.bytes.Add(float64(n))
	return n, err
}

type meteredBody struct {
	rc     io.ReadCloser
	m      *metrics
	start  time.Time
	closed bool
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.m.bytes.Add(float64(n))
	return n, err
}

func (b *meteredBody) Close() error {
	if !b.closed {
		b.closed = true
		b.m.fetch.Observe(time.Since(b.start).Seconds())
	}
	return b.rc.Close()
}
