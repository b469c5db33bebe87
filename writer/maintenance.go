package writer

import (
	"context"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
)

// maintenanceLoop compacts each level at its interval, writes snapshots,
// applies retention after either, and stops replication once the lease
// was lost (see keepLease). It runs beside the sync loop so that a long
// compaction never holds up a sync.
func (r *Replicator) maintenanceLoop(ctx context.Context) {
	tick := time.Second
	for _, iv := range append([]time.Duration{r.opts.SyncInterval, r.opts.SnapshotInterval, r.opts.LeaseTTL / 3}, r.opts.CompactionIntervals...) {
		if iv > 0 && iv < tick {
			tick = iv
		}
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()

	start := time.Now()
	lastCompact := make([]time.Time, len(r.opts.CompactionIntervals))
	for i := range lastCompact {
		lastCompact[i] = start
	}
	var lastSnapshot time.Time
	snapshotKnown := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := r.leaseLost(); err != nil {
			r.setFatal(err)
			return
		}
		if r.TXID() == 0 || r.bucketMissed.Load() {
			// Nothing replicated yet, or the bucket was found missing:
			// the sync loop first checks that the replica still holds
			// what was written (see checkReplicaKept).
			continue
		}
		changed := false
		for i, iv := range r.opts.CompactionIntervals {
			if iv <= 0 || time.Since(lastCompact[i]) < iv {
				continue
			}
			lastCompact[i] = time.Now()
			info, err := r.Compact(ctx, i+1)
			if err != nil {
				r.maintenanceError(ctx, "compaction", err)
				continue
			}
			changed = changed || info != nil
		}
		if r.opts.SnapshotInterval > 0 {
			if !snapshotKnown {
				t, err := r.newestSnapshotTime(ctx)
				if err != nil {
					r.maintenanceError(ctx, "list snapshots", err)
					continue
				}
				lastSnapshot, snapshotKnown = t, true
			}
			if time.Since(lastSnapshot) >= r.opts.SnapshotInterval {
				lastSnapshot = time.Now()
				if _, err := r.Snapshot(ctx); err != nil {
					r.maintenanceError(ctx, "snapshot", err)
				} else {
					changed = true
				}
			}
		}
		if changed {
			if err := r.EnforceRetention(ctx); err != nil {
				r.maintenanceError(ctx, "retention", err)
			}
		}
	}
}

func (r *Replicator) maintenanceError(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	if isFatal(err) {
		r.setFatal(err)
		return
	}
	r.noteMissingBucket(err)
	r.log.Warn(what+" failed; retrying at the next interval", "error", err, "replica", storage.Client(r.client).String())
}
