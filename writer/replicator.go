package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/ctxtime"
	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// ErrClosed is returned by the methods of a closed Replicator.
var ErrClosed = errors.New("replicator closed")

// ErrReplicaConflict is wrapped by the error of a write that found another
// writer's file where this writer's next file belongs: two writers on one
// replica. The Replicator stops rather than write over it.
var ErrReplicaConflict = errors.New("another writer is writing this replica")

// Replicator streams one SQLite database into a replica.
type Replicator struct {
	path    string
	walPath string
	raw     storage.Client // the replica, as given to New
	client  storage.Client // raw, through which every write waits for the lease (leasedClient)
	opts    Options
	log     *slog.Logger
	m       *metrics
	holder  lease.Holder // who takes the replica's lease

	spoolPrefix string // names this database's and replica's spool files

	lifeMu  sync.Mutex // guards opening, starting and closing
	opened  bool
	closed  bool
	started bool
	lease   lease.Lease
	// stopLease and leaseWG stop keepLease; leaseLostErr is set by it.
	stopLease    context.CancelFunc
	leaseWG      sync.WaitGroup
	leaseLostErr atomic.Pointer[error]
	// bucketMissed is set once a request found the bucket missing, until
	// the replica is seen to hold this writer's files (checkReplicaKept).
	bucketMissed atomic.Bool
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	done         chan struct{}
	fatal        atomic.Pointer[error]

	// mu serializes everything that reads the WAL or changes the state.
	mu       sync.Mutex
	cs       *conns
	dbFile   *os.File
	dbPerm   os.FileMode // given to the position file (SidecarSuffix)
	pageSize uint32
	st       state
	guard    walGuard
	pending  *pendingFile
	replica  *replicaPos // what the replica held when it was first listed
	ckpt     checkpointState

	// snapMu keeps checkpoints (which replace the read transaction) away
	// while a snapshot reads the database without holding mu.
	snapMu sync.RWMutex

	// maintMu serializes compaction, snapshots and retention.
	maintMu     sync.Mutex
	l0CoveredAt map[ltx.TXID]time.Time // by MaxTXID: see dateL0Covers

	pub publisher // the manifest (see publish.go)

	pos atomic.Pointer[ltx.Pos]
	// Lag (see Lag): the replica holds every commit made before heldAsOf
	// (unix nanoseconds); behind is set while it may lack later ones (a
	// sync found commits to upload, or failed); syncStart is the start of
	// the sync under way (0: none), syncStartedAt the same under mu.
	heldAsOf      atomic.Int64
	behind        atomic.Bool
	caughtUps     atomic.Uint64 // counts setCaughtUp: SyncToken's proof that its sync copied everything (token.go)
	syncStart     atomic.Int64
	syncStartedAt time.Time
}

// New returns a Replicator of the database at dbPath into client. It checks
// its arguments and the database file; nothing is opened or written before
// Open, Start or Sync.
func New(dbPath string, client storage.Client, opts Options) (*Replicator, error) {
	if client == nil {
		return nil, errors.New("writer: no replica client")
	}
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", dbPath, err)
	}
	if err := checkSQLiteFile(abs); err != nil {
		return nil, err
	}
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("writer options for %s: %w", abs, err)
	}
	host, _ := os.Hostname()
	r := &Replicator{
		path:        abs,
		walPath:     abs + "-wal",
		raw:         client,
		opts:        opts,
		log:         opts.Logger.With("db", abs),
		holder:      lease.ThisProcess(fmt.Sprintf("ltx-writer pid %d on %s for %s", os.Getpid(), host, abs), abs),
		done:        make(chan struct{}),
		l0CoveredAt: map[ltx.TXID]time.Time{},
	}
	r.pub.files = map[fileKey]manifest.File{}
	r.client = leasedClient{Client: client, r: r}
	r.spoolPrefix = spoolPrefix(abs, client.String())
	r.pos.Store(&ltx.Pos{})
	if r.m, err = newMetrics(opts.Registerer, abs, r); err != nil {
		return nil, fmt.Errorf("writer metrics for %s: %w", abs, err)
	}
	return r, nil
}

// Path is the database's absolute path.
func (r *Replicator) Path() string { return r.path }

// Client is the replica.
func (r *Replicator) Client() storage.Client { return r.raw }

// Pos is the replica's position: the last TXID uploaded and the database
// checksum after it.
func (r *Replicator) Pos() ltx.Pos { return *r.pos.Load() }

// TXID is the last TXID uploaded.
func (r *Replicator) TXID() ltx.TXID { return r.Pos().TXID }

// Lag is how far the replica may be behind the database: the age of the
// oldest commit it may lack, counted from the start of the last sync that
// copied everything (it holds every commit made before), while a sync
// has found commits to upload or syncs fail; at least the time since the
// sync under way began, so that a sync that hangs (stalled storage, a
// half-open connection) shows at once; zero right after a sync that
// copied everything.
func (r *Replicator) Lag() time.Duration {
	now := time.Now()
	var lag time.Duration
	if r.behind.Load() {
		lag = now.Sub(time.Unix(0, r.heldAsOf.Load()))
	}
	if s := r.syncStart.Load(); s != 0 {
		lag = max(lag, now.Sub(time.Unix(0, s)))
	}
	return max(lag, 0)
}

// Done is closed when the background loops started by Start have stopped:
// after Close, or after a fatal error (see Err).
func (r *Replicator) Done() <-chan struct{} { return r.done }

// Err is the fatal error that stopped replication, if any: another writer
// on the replica, or a database that can no longer be read.
func (r *Replicator) Err() error {
	if p := r.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// Open takes the replica's lease (renewed from then on until Close), opens
// the database, puts it in WAL mode and begins the long-running read
// transaction. Start, Sync, Compact and Snapshot call it when needed.
func (r *Replicator) Open(ctx context.Context) (err error) {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	return r.openLocked(ctx)
}

func (r *Replicator) openLocked(ctx context.Context) (err error) {
	if r.closed {
		return ErrClosed
	}
	if r.opened {
		return nil
	}
	if err := checkSQLiteFile(r.path); err != nil {
		return err
	}
	defer func() {
		if err != nil && r.lease != nil {
			r.stopKeepLease()
			_ = r.lease.Release(context.WithoutCancel(ctx))
			r.lease = nil
		}
	}()
	if leaser := lease.Find(r.client); leaser != nil {
		held, err := leaser.AcquireLease(ctx, r.holder, r.opts.LeaseTTL)
		switch {
		case errors.Is(err, storage.ErrNoConditionalWrites) && !r.opts.AllowUnfenced:
			// The error wraps storage.ErrNoConditionalWrites.
			return fmt.Errorf("refusing to replicate to %s: its storage cannot fence a stale writer (one paused past its lease could write over the files of the writer that took over; AllowUnfenced, ltx-writer's -allow-unfenced, runs anyway, only where a second writer can never start): %w",
				r.client, err)
		case errors.Is(err, storage.ErrNoConditionalWrites):
			r.log.Warn("replicating WITHOUT A FENCE: the storage does not support conditional writes, so no lease keeps a second writer out and nothing stops a writer paused past its lease from writing over another's files (allowed by AllowUnfenced); each upload first checks for other writers' files",
				"replica", r.client.String(), "error", err)
		case errors.Is(err, errors.ErrUnsupported):
			r.log.Warn("replica grants no lease; each upload first checks for other writers' files, and a file another writer wrote is never written over (the writer stops instead)",
				"replica", r.client.String(), "error", err)
		case errors.Is(err, lease.ErrHeld):
			return fmt.Errorf("%w: %w", ErrReplicaConflict, err)
		case err != nil:
			return fmt.Errorf("take lease on %s: %w", r.client, err)
		default:
			r.lease = held
			r.startKeepLease()
			if dead := held.TookOverFrom(); dead != nil {
				r.log.Info("took over the lease of this database's previous writer, which exited without releasing it",
					"pid", dead.PID, "path", dead.Path, "replica", r.client.String())
				// An upload the predecessor had sent whole before it died
				// may still be committed by the server: it must be listed
				// before this writer picks its next TXID, not land over
				// this writer's file for the same TXID afterwards.
				if err := ctxtime.Sleep(ctx, takeoverSettle); err != nil {
					return err
				}
			}
		}
	}
	r.removeStaleSpools()

	r.mu.Lock()
	defer r.mu.Unlock()
	cs, err := openConns(ctx, r.path, r.opts.BusyTimeout)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cs.close()
		}
	}()
	dbFile, err := os.Open(r.path)
	if err != nil {
		return fmt.Errorf("open database %s: %w", r.path, err)
	}
	r.cs, r.dbFile, r.pageSize = cs, dbFile, cs.pageSize
	r.dbPerm = 0o600
	if fi, err := dbFile.Stat(); err == nil {
		r.dbPerm = fi.Mode().Perm()
	}

	// A WAL without a frame gives the replica no position to resume from.
	if fi, err := os.Stat(r.walPath); err != nil || fi.Size() < walHeaderSize+walFrameHeaderSize+int64(r.pageSize) {
		if err := cs.bumpSeq(); err != nil {
			dbFile.Close()
			return err
		}
	}
	if err := r.beginReadLocked(true); err != nil {
		dbFile.Close()
		return err
	}
	r.ckpt.last = time.Now()
	r.heldAsOf.Store(time.Now().UnixNano())
	r.opened = true
	r.log.Info("replicating", "replica", r.client.String(), "page_size", r.pageSize)
	return nil
}

// Start opens the replicator and runs syncs, checkpoints, compactions,
// snapshots and retention in the background until ctx is done, Close is
// called, or a fatal error (see Err).
func (r *Replicator) Start(ctx context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.started {
		return errors.New("replicator already started")
	}
	if err := r.openLocked(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.started = true
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.syncLoop(ctx) }()
	go func() { defer r.wg.Done(); r.maintenanceLoop(ctx) }()
	go func() { r.wg.Wait(); close(r.done) }()
	return nil
}

// Sync copies the WAL's committed transactions into one L0 file and returns
// once it is uploaded (or there was nothing to copy), then checkpoints if a
// threshold is passed.
func (r *Replicator) Sync(ctx context.Context) error {
	if err := r.Open(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cs == nil {
		return ErrClosed
	}
	if err := r.syncLocked(ctx); err != nil {
		return err
	}
	return r.maybeCheckpointLocked(ctx)
}

// Close stops the background loops, makes a final sync, ends the read
// transaction (so that the application's checkpoints can reset the WAL),
// closes the database and gives the lease up. The final sync's error is
// returned; ctx bounds its retries.
func (r *Replicator) Close(ctx context.Context) error {
	r.lifeMu.Lock()
	if r.closed {
		r.lifeMu.Unlock()
		return nil
	}
	r.closed = true
	cancel := r.cancel
	r.lifeMu.Unlock()
	// The loops may be waiting for lifeMu (Sync opens lazily): wait for
	// them without it.
	if cancel != nil {
		cancel()
		r.wg.Wait()
	} else {
		close(r.done)
	}
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if !r.opened {
		return nil
	}
	// A snapshot in progress reads through the connections.
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()

	var errs []error
	if r.Err() == nil {
		errs = append(errs, r.finalSyncLocked(ctx))
	}
	if r.pending != nil {
		// Not uploaded: the WAL keeps its frames for the next writer,
		// and the spooled copy would only fill the disk.
		r.pending.body.close()
		r.pending = nil
	}
	errs = append(errs, r.cs.endRead(), r.cs.unlockWrites(), r.cs.close(), r.dbFile.Close())
	r.cs = nil
	if r.lease != nil {
		r.stopKeepLease()
		errs = append(errs, r.lease.Release(context.WithoutCancel(ctx)))
	}
	r.m.unregister()
	return errors.Join(errs...)
}

// finalSyncLocked syncs, retrying with backoff until ctx is done.
func (r *Replicator) finalSyncLocked(ctx context.Context) error {
	wait := 50 * time.Millisecond
	for {
		err := r.syncLocked(ctx)
		if err == nil || isFatal(err) {
			return err
		}
		r.log.Warn("final sync failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("final sync of %s: %w", r.path, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, r.opts.MaxRetryInterval)
	}
}

// setFatal stops the background loops for good.
func (r *Replicator) setFatal(err error) {
	if r.fatal.CompareAndSwap(nil, &err) {
		r.log.Error("replication stopped", "error", err)
		if r.cancel != nil {
			r.cancel()
		}
	}
}

func isFatal(err error) bool {
	return errors.Is(err, ErrReplicaConflict) || errors.Is(err, ErrReplicaLost) || errors.Is(err, ErrNotSQLite) || errors.Is(err, errDatabaseReplaced)
}

// syncLoop syncs every SyncInterval, backing off while syncs fail.
func (r *Replicator) syncLoop(ctx context.Context) {
	if r.opts.SyncInterval < 0 {
		<-ctx.Done()
		return
	}
	wait := time.Duration(0) // the first sync right away
	failures := 0
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := r.Sync(ctx)
		switch {
		case err == nil:
			failures = 0
			wait = r.opts.SyncInterval
		case ctx.Err() != nil:
			return
		case isFatal(err):
			r.setFatal(err)
			return
		default:
			failures++
			wait = min(r.opts.SyncInterval<<min(failures, 16), r.opts.MaxRetryInterval)
			r.log.Warn("sync failed; retrying", "error", err, "attempt", failures, "retry_in", wait, "lag", r.Lag().Round(time.Millisecond))
		}
		timer.Reset(wait)
	}
}
