package writer

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the writer's Prometheus metrics, labelled with the database
// path so that one process can replicate several databases.
type metrics struct {
	reg           prometheus.Registerer
	collectors    []prometheus.Collector
	syncs         prometheus.Counter
	syncErrors    prometheus.Counter
	syncSeconds   prometheus.Histogram
	walBytes      prometheus.Gauge
	txid          prometheus.Gauge
	uploadedBytes prometheus.Counter
	checkpoints   *prometheus.CounterVec
	ckptErrors    *prometheus.CounterVec
	compactions   *prometheus.CounterVec
	snapshots     prometheus.Counter
	snapshotsL0   prometheus.Counter
	lostWAL       prometheus.Counter
	publishes     prometheus.Counter
	publishErrors prometheus.Counter
	manifestTXID  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, db string, r *Replicator) (*metrics, error) {
	labels := prometheus.Labels{"db": db}
	const ns = "ltx_writer"
	m := &metrics{
		reg: reg,
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "syncs_total",
			Help: "Syncs of the WAL into the replica.", ConstLabels: labels}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "sync_errors_total",
			Help: "Syncs that failed (they are retried).", ConstLabels: labels}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "sync_duration_seconds",
			Help: "Time to copy the WAL into an L0 file and upload it.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		walBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "wal_bytes",
			Help: "Size of the WAL file.", ConstLabels: labels}),
		txid: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "replica_txid",
			Help: "Newest TXID uploaded to the replica.", ConstLabels: labels}),
		uploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "uploaded_bytes_total",
			Help: "Bytes of LTX files uploaded (L0, compactions, snapshots).", ConstLabels: labels}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "checkpoints_total",
			Help: "Checkpoints run by the writer, by mode.", ConstLabels: labels}, []string{"mode"}),
		ckptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "checkpoint_errors_total",
			Help: "Checkpoints that failed, by mode.", ConstLabels: labels}, []string{"mode"}),
		compactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "compactions_total",
			Help: "Compactions written, by destination level.", ConstLabels: labels}, []string{"level"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "snapshots_total",
			Help: "Snapshots written to the snapshot level.", ConstLabels: labels}),
		snapshotsL0: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "l0_snapshots_total",
			Help: "L0 files that hold the whole database: the first file, or continuity with the WAL was lost.", ConstLabels: labels}),
	}
	m.lostWAL = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "wal_continuity_lost_total",
		Help: "Times the WAL could not be tied to the replica, so the database was compared with the replica (and a snapshot written if they differed).", ConstLabels: labels})
	m.publishes = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "manifest_publishes_total",
		Help: "Manifests written to the replica (one after each change that readers can see).", ConstLabels: labels})
	m.publishErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "manifest_publish_errors_total",
		Help: "Manifest publishes that failed (the next sync tries again; readers meanwhile see the previous manifest).", ConstLabels: labels})
	m.manifestTXID = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "manifest_txid",
		Help: "TXID named by the manifest last published (or found at start).", ConstLabels: labels})
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "replica_lag_seconds",
		Help: "How far the replica may be behind the database: the age of the oldest commit it may lack, at least how long the sync under way has run (0 right after a sync that copied everything).", ConstLabels: labels},
		func() float64 { return r.Lag().Seconds() })
	m.collectors = []prometheus.Collector{m.syncs, m.syncErrors, m.syncSeconds, m.walBytes, m.txid, m.uploadedBytes,
		m.checkpoints, m.ckptErrors, m.compactions, m.snapshots, m.snapshotsL0, m.lostWAL,
		m.publishes, m.publishErrors, m.manifestTXID, lag}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

// unregister removes the metrics of a closed writer, so that a new writer
// of the same database can register its own.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) observeSync(d time.Duration, err error) {
	m.syncs.Inc()
	if err != nil {
		m.syncErrors.Inc()
	}
	m.syncSeconds.Observe(d.Seconds())
}

func (m *metrics) checkpoint(mode string, err error) {
	m.checkpoints.WithLabelValues(mode).Inc()
	if err != nil {
		m.ckptErrors.WithLabelValues(mode).Inc()
	}
}

func (m *metrics) compaction(level int) {
	m.compactions.WithLabelValues(strconv.Itoa(level)).Inc()
}
