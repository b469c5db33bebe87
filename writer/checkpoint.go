package writer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// CheckpointMode is how the writer checkpoints.
type CheckpointMode int

const (
	// CheckpointPassive copies the WAL into the database as far as the
	// readers allow, without waiting for them.
	CheckpointPassive CheckpointMode = iota
	// CheckpointTruncate waits (up to the busy timeout) for the readers and
	// then truncates the WAL: the emergency brake for a runaway WAL.
	CheckpointTruncate
)

func (m CheckpointMode) String() string {
	if m == CheckpointTruncate {
		return "TRUNCATE"
	}
	return "PASSIVE"
}

type checkpointState struct {
	last                  time.Time
	syncedSinceCheckpoint bool
	// The generation and size at the last threshold checkpoint: a
	// checkpoint that could not reset the WAL (readers in the way) is not
	// retried before the WAL grows.
	attemptSalt1, attemptSalt2 uint32
	attemptFrames              int64
}

// Checkpoint checkpoints now, through the same path as the writer's own
// checkpoints.
func (r *Replicator) Checkpoint(ctx context.Context, mode CheckpointMode) error {
	if err := r.Open(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cs == nil {
		return ErrClosed
	}
	return r.checkpointLocked(ctx, mode, "requested")
}

// maybeCheckpointLocked checkpoints when the WAL passes a threshold, or when
// replicated changes have waited in it for CheckpointInterval.
func (r *Replicator) maybeCheckpointLocked(ctx context.Context) error {
	if !r.st.hasGen {
		return nil
	}
	frames := (r.st.pos.offset - walHeaderSize) / (walFrameHeaderSize + int64(r.pageSize))
	grown := r.ckpt.attemptSalt1 != r.st.pos.salt1 || r.ckpt.attemptSalt2 != r.st.pos.salt2 ||
		frames >= r.ckpt.attemptFrames+max(1, int64(r.opts.MinCheckpointPages)/2)
	var mode CheckpointMode
	var reason string
	switch {
	case r.opts.TruncatePages > 0 && frames >= int64(r.opts.TruncatePages) && grown:
		mode, reason = CheckpointTruncate, fmt.Sprintf("WAL past %d pages", r.opts.TruncatePages)
	case frames >= int64(r.opts.MinCheckpointPages) && grown:
		mode, reason = CheckpointPassive, fmt.Sprintf("WAL past %d pages", r.opts.MinCheckpointPages)
	case r.opts.CheckpointInterval > 0 && r.ckpt.syncedSinceCheckpoint && frames > 0 && time.Since(r.ckpt.last) >= r.opts.CheckpointInterval:
		mode, reason = CheckpointPassive, "interval"
	default:
		return nil
	}
	if reason != "interval" {
		r.ckpt.attemptSalt1, r.ckpt.attemptSalt2, r.ckpt.attemptFrames = r.st.pos.salt1, r.st.pos.salt2, frames
	}
	return r.checkpointLocked(ctx, mode, reason)
}

// checkpointLocked is the only way the writer checkpoints. Under SQLite's
// write lock it copies the WAL to its end, ends the read transaction,
// checkpoints, and begins the read transaction again before any
// transaction can commit: whatever SQLite does with the WAL afterwards, a
// restart can only end the generation where the copy ended, which the next
// sync recognizes as clean. When the checkpoint reached the end of the WAL
// it writes to the sequence table, so that the restarted WAL at once has a
// frame the replica records (with the new salts) as its position.
func (r *Replicator) checkpointLocked(ctx context.Context, mode CheckpointMode, reason string) (err error) {
	if !r.snapMu.TryLock() {
		r.log.Debug("checkpoint postponed: a snapshot is reading the database", "reason", reason)
		return nil
	}
	defer r.snapMu.Unlock()

	if err := r.cs.lockWrites(); err != nil {
		if isBusy(err) {
			r.log.Debug("checkpoint skipped: a write transaction is open", "mode", mode, "reason", reason)
			return nil
		}
		return fmt.Errorf("checkpoint %s: %w", r.path, err)
	}
	locked := true
	defer func() {
		if locked {
			err = errors.Join(err, r.cs.unlockWrites())
		}
	}()
	if err := r.syncLocked(ctx); err != nil {
		return fmt.Errorf("sync before checkpoint: %w", err)
	}

	// Nothing can be appended to the WAL until unlockWrites, and all of it
	// is in the replica.
	if err := r.cs.endRead(); err != nil {
		return err
	}
	r.guard.held = false
	nLog, nCkpt, ckErr := r.cs.checkpoint(sqlite3.CHECKPOINT_PASSIVE)
	if mode == CheckpointTruncate {
		// Wait for the readers that keep the checkpoint from the end of
		// the WAL, as TRUNCATE would, with new commits held off.
		deadline := time.Now().Add(r.opts.BusyTimeout)
		for ckErr == nil && nCkpt < nLog && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			nLog, nCkpt, ckErr = r.cs.checkpoint(sqlite3.CHECKPOINT_PASSIVE)
			if isBusy(ckErr) {
				ckErr, nLog, nCkpt = nil, 1, 0
			}
		}
	}
	busy := isBusy(ckErr)
	if busy {
		// Another checkpoint (the application's) is running: this one
		// made no progress, which is not an error. But that one may
		// backfill the whole WAL before the read transaction begins
		// below, which then reads the database file only (read slot 0)
		// and keeps no one from restarting the WAL under frames a
		// snapshot reads: go on as after a full checkpoint, so that it
		// begins again past a new frame.
		r.log.Debug("checkpoint busy", "mode", mode, "reason", reason)
		ckErr, nLog, nCkpt = nil, 1, 0
	}
	full := ckErr == nil && (busy || nLog >= 0 && nCkpt == nLog)
	rerr := r.beginReadLocked(false)
	locked = false
	uerr := r.cs.unlockWrites()
	r.m.checkpoint(mode.String(), ckErr)
	if err := errors.Join(ckErr, rerr, uerr); err != nil {
		return fmt.Errorf("checkpoint %s (%s): %w", r.path, mode, err)
	}
	r.ckpt.last = time.Now()
	r.log.Debug("checkpoint", "mode", mode, "reason", reason, "wal_frames", nLog, "backfilled", nCkpt)
	if !full {
		// Readers keep part of the WAL from the database; while the read
		// transaction is held no one can restart it.
		r.ckpt.syncedSinceCheckpoint = false
		return nil
	}
	if mode == CheckpointTruncate && !busy {
		// The read transaction began with the WAL fully backfilled, so it
		// reads the database file only and lets TRUNCATE through, and it
		// blocks any backfill of frames written since: TRUNCATE then
		// either resets a WAL that ends where the copy ended, or is busy.
		if _, _, err := r.cs.checkpoint(sqlite3.CHECKPOINT_TRUNCATE); err != nil && !isBusy(err) {
			return fmt.Errorf("checkpoint %s (TRUNCATE): %w", r.path, err)
		}
	}
	if err := r.cs.bumpSeq(); err != nil {
		return err
	}
	if err := r.syncLocked(ctx); err != nil {
		return fmt.Errorf("sync after checkpoint: %w", err)
	}
	// The sequence write is the writer's own: it does not call for the
	// next interval checkpoint.
	r.ckpt.syncedSinceCheckpoint = false

	// The read transaction began with the WAL fully backfilled, so it
	// holds SQLite's read slot 0: no checkpoint can backfill anything while
	// it lasts, and the application's autocheckpoint would sort the whole
	// WAL on every commit in vain. Begin it again now that the WAL has a
	// frame past the backfill: it then takes a slot at the end of the WAL,
	// up to which checkpoints may go.
	return r.renewReadLocked(ctx)
}

// renewReadLocked ends and begins the read transaction again under the
// write lock, after copying the WAL to its end.
func (r *Replicator) renewReadLocked(ctx context.Context) (err error) {
	if err := r.cs.lockWrites(); err != nil {
		if isBusy(err) {
			return nil // the next checkpoint will do it
		}
		return err
	}
	defer func() { err = errors.Join(err, r.cs.unlockWrites()) }()
	if err := r.syncLocked(ctx); err != nil {
		return fmt.Errorf("sync after checkpoint: %w", err)
	}
	if err := r.cs.endRead(); err != nil {
		return err
	}
	r.guard.held = false
	return r.beginReadLocked(false)
}

// beginReadLocked begins the long-running read transaction and records what
// it guarantees (walGuard). Under SQLite's write lock (taken here if
// takeLock, else already held) the end of the WAL is known exactly.
func (r *Replicator) beginReadLocked(takeLock bool) error {
	if takeLock {
		if err := r.cs.lockWrites(); err != nil {
			if !isBusy(err) {
				return err
			}
			r.log.Warn("write lock busy; beginning the read transaction without it", "error", err)
		} else {
			defer r.cs.unlockWrites()
		}
	}
	if err := r.cs.beginRead(); err != nil {
		return err
	}
	g := walGuard{held: true, valid: r.cs.writeTx}
	hdr, hasHdr, wal, err := r.openWAL()
	if err != nil {
		r.guard = walGuard{held: true}
		return err
	}
	if !hasHdr {
		g.fresh = g.valid
		r.guard = g
		return nil
	}
	defer wal.Close()
	from := hdr.start()
	if r.st.hasGen && r.st.pos.sameGeneration(hdr) && r.st.pos.offset > walHeaderSize && frameEndsAt(wal, hdr, r.st.pos) {
		from = r.st.pos
	}
	scan, _, err := scanWAL(wal, hdr, from, 0)
	if err != nil {
		r.guard = walGuard{held: true}
		return fmt.Errorf("read WAL %s: %w", r.walPath, err)
	}
	g.hasAnchor, g.anchor = true, scan.end
	r.guard = g
	return nil
}
