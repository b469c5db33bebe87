package writer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options, Litestream v0.5's where it has one.
const (
	DefaultSyncInterval       = 1 * time.Second
	DefaultSnapshotInterval   = 24 * time.Hour
	DefaultSnapshotRetention  = 24 * time.Hour
	DefaultL0Retention        = 5 * time.Minute
	DefaultMinCheckpointPages = 1000
	DefaultTruncatePages      = 10000
	DefaultCheckpointInterval = 1 * time.Minute
	DefaultBusyTimeout        = 5 * time.Second
	DefaultLeaseTTL           = 30 * time.Second
	DefaultMaxRetryInterval   = 30 * time.Second
	DefaultManifestGrace      = 5 * time.Minute
)

// NoL0Retention, as Options.L0Retention, keeps no L0 file past its
// compaction into L1 (zero there means DefaultL0Retention).
const NoL0Retention time.Duration = -1

// NoManifestGrace, as Options.ManifestGrace, keeps no file for the sake of
// a manifest that was replaced (zero there means DefaultManifestGrace).
const NoManifestGrace time.Duration = -1

// DefaultCompactionIntervals compact L0 into L1 every 30s, L1 into L2 every
// 5m and L2 into L3 every hour.
var DefaultCompactionIntervals = []time.Duration{30 * time.Second, 5 * time.Minute, time.Hour}

// Options configure a Replicator. The zero value means every default.
type Options struct {
	// SyncInterval is how often the WAL is copied into an L0 file.
	// A negative value turns the background sync off: only Sync copies.
	SyncInterval time.Duration

	// CompactionIntervals[i] is how often level i is compacted into level
	// i+1; nil means DefaultCompactionIntervals. At most 8 levels (L1..L8).
	// An interval of zero or less leaves that level to explicit Compact
	// calls.
	CompactionIntervals []time.Duration

	// SnapshotInterval is how often a snapshot (level 9) is written from
	// the live database; one is also written at start when the newest is
	// older than this. Negative: only explicit Snapshot calls.
	SnapshotInterval time.Duration

	// SnapshotRetention is how long snapshots are kept; the newest is kept
	// whatever its age. Files of levels 1..8 below the oldest kept snapshot
	// are removed with it. Negative: keep everything.
	SnapshotRetention time.Duration

	// L0Retention is how long an L0 file is kept after a file of a higher
	// level first covered it (the L1 compacted from it, or a snapshot), so
	// that readers that planned with it can move on; the clock keeps
	// running when that file is compacted further and pruned. Zero means
	// DefaultL0Retention; NoL0Retention (any negative value) means none:
	// an L0 file goes at the retention pass that follows its compaction
	// into L1 (with no compaction level, once it ends below the oldest
	// kept snapshot).
	L0Retention time.Duration

	// MinCheckpointPages is the WAL size, in frames of the current
	// generation, past which the writer runs a PASSIVE checkpoint.
	MinCheckpointPages int
	// TruncatePages is the WAL size past which the writer waits for
	// readers and truncates the WAL (an emergency for a runaway WAL).
	// Negative: never.
	TruncatePages int
	// CheckpointInterval is how long after the last checkpoint a WAL with
	// replicated changes is checkpointed anyway. Negative: never.
	CheckpointInterval time.Duration

	// BusyTimeout bounds the writer's waits for SQLite locks.
	BusyTimeout time.Duration

	// LeaseTTL is the lease held on the replica by backends that grant one
	// (lease.Leaser); it is renewed every third of it.
	LeaseTTL time.Duration

	// AllowUnfenced lets the writer run on storage that cannot write
	// conditionally (storage.ErrNoConditionalWrites: an S3-compatible
	// server that refuses or ignores If-None-Match), which Open otherwise
	// refuses. There nothing fences a writer paused past its lease (a
	// GC pause, a stopped VM, a partitioned host): its uploads can land
	// over the files of the writer that took the replica over, and a
	// reader get rows of neither. Set it only where a second writer of
	// the replica can never start.
	AllowUnfenced bool

	// Checksums makes every file carry the database's rolling checksum,
	// which Restore checks and which lets a restarted writer tie a database
	// to the replica without a full copy. Off by default, as in Litestream
	// v0.5, whose restore compacts with checksums off and refuses files
	// that carry one: a replica written with Checksums cannot be restored
	// by Litestream.
	Checksums bool

	// NoHints stops the hint objects (manifest.HintName) written beside
	// every file larger than manifest.WholeFileMax: its page index, the
	// sums of its frames and copies of its B-tree interior pages, which
	// readers (the ltx VFS) fetch in one request at open instead of one
	// request per page. Litestream never lists them. The manifest then
	// names those files without a hint (readers read their page index
	// from the file).
	// Without them, a replica reads as one Litestream wrote.
	NoHints bool

	// NoManifest stops the manifest (see package manifest): readers then
	// list the replica's levels to open and follow it, as they do a
	// Litestream replica. A manifest an earlier writer left is removed at
	// the first sync, so that no reader follows it while it goes stale.
	NoManifest bool

	// ManifestGrace is how long retention keeps the files a manifest names
	// after a newer manifest replaced it, so that a reader that read the
	// older one (a moment ago, or from a cache) still finds its files.
	// The files of the current manifest are always kept. Zero means
	// DefaultManifestGrace; NoManifestGrace (any negative value) means
	// none. The clock starts again with the process: a restarted writer
	// keeps only what its own manifests named.
	ManifestGrace time.Duration

	// MaxRetryInterval caps the backoff between failed syncs.
	MaxRetryInterval time.Duration

	// TempDir holds spooled files (large L0 files waiting for upload);
	// empty means os.TempDir().
	TempDir string

	// Logger receives the writer's logs; nil means slog.Default().
	Logger *slog.Logger

	// Registerer receives the writer's metrics, labelled with the database
	// path; nil means no metrics.
	Registerer prometheus.Registerer
}

// withDefaults fills in the zero values and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.CompactionIntervals == nil {
		o.CompactionIntervals = DefaultCompactionIntervals
	}
	if len(o.CompactionIntervals) > 8 {
		return o, fmt.Errorf("%d compaction levels given, at most 8 (L1..L8) fit below the snapshot level", len(o.CompactionIntervals))
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	if o.SnapshotRetention == 0 {
		o.SnapshotRetention = DefaultSnapshotRetention
	}
	if o.L0Retention == 0 {
		o.L0Retention = DefaultL0Retention
	}
	if o.ManifestGrace == 0 {
		o.ManifestGrace = DefaultManifestGrace
	}
	if o.MinCheckpointPages == 0 {
		o.MinCheckpointPages = DefaultMinCheckpointPages
	}
	if o.MinCheckpointPages < 0 {
		return o, fmt.Errorf("minimum checkpoint pages %d is negative", o.MinCheckpointPages)
	}
	if o.TruncatePages == 0 {
		o.TruncatePages = DefaultTruncatePages
	}
	if o.TruncatePages > 0 && o.TruncatePages < o.MinCheckpointPages {
		return o, fmt.Errorf("truncate checkpoint threshold %d pages is below the passive threshold %d", o.TruncatePages, o.MinCheckpointPages)
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.BusyTimeout < 0 {
		return o, fmt.Errorf("busy timeout %s is negative", o.BusyTimeout)
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseTTL < time.Second {
		return o, fmt.Errorf("lease TTL %s is below one second", o.LeaseTTL)
	}
	if o.MaxRetryInterval == 0 {
		o.MaxRetryInterval = DefaultMaxRetryInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
