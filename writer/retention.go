package writer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// EnforceRetention deletes what the retention policy no longer keeps. It
// decides from one listing of every level, so that a file goes once nothing
// needs it, whatever order compaction and pruning happened in:
//
//   - snapshots older than SnapshotRetention;
//   - files of levels 1..8 that end below the oldest kept snapshot, once the
//     next level's compaction has passed them (or at the top compaction
//     level);
//   - L0 files that L1's compaction has passed (or all, with no compaction
//     level), that a file of levels 1..8 covers or that end below the
//     oldest kept snapshot, once L0Retention has passed since a file of a
//     higher level first covered them (readers that planned with them have
//     moved on). That clock survives the covering file being compacted
//     further and pruned; it restarts with the process.
//
// Whatever the options, it keeps:
//
//   - everything a restore of a TXID at or after the oldest kept snapshot
//     needs (of the TXIDs the files serve: a compacted file serves its
//     MaxTXID);
//   - the newest file of each level: the newest L0 file records the WAL
//     position a restarted writer resumes from, and each level's next
//     compaction starts after the newest file of its own;
//   - every file until the file that replaces it is listed.
//
// Another reason to keep a file (one a reader may still be sent to) is one
// more condition in prunable.
func (r *Replicator) EnforceRetention(ctx context.Context) error {
	r.maintMu.Lock()
	defer r.maintMu.Unlock()
	if err := r.Err(); err != nil {
		return err
	}
	levels := make([][]*ltx.FileInfo, storage.SnapshotLevel+1)
	for level := range levels {
		infos, err := storage.ListLevel(ctx, r.client, level, 0, false)
		if err != nil {
			return fmt.Errorf("retention: list L%d of %s: %w", level, r.client, err)
		}
		levels[level] = infos
	}
	now := time.Now()
	r.dateL0Covers(levels, now)
	del, oldestKept := r.prunable(levels, now)
	del = r.keepPublished(del, now)

	// Hints whose file is gone.
	staleHints, legacy, err := r.staleHints(ctx, levels, del)
	if err != nil {
		r.log.Warn("retention: list hints", "err", err)
	}
	del = append(del, legacy...)

	if len(del) == 0 && len(staleHints) == 0 {
		return nil
	}
	if len(del) > 0 {
		err = r.client.DeleteLTXFiles(ctx, del)
		// Those still there after a failure are not needed: plan without
		// them, and publish if the plan changed.
		r.forget(del)
		if err != nil {
			return fmt.Errorf("retention: delete %d files from %s: %w", len(del), r.client, err)
		}
		if err := r.publish(ctx); err != nil {
			return err
		}
	}
	// After the files: a hint without its file is useless, a file without
	// its hint is read without its checks.
	if err := r.client.DeleteObjects(ctx, staleHints); err != nil {
		return fmt.Errorf("retention: delete %d hints from %s: %w", len(staleHints), r.client, err)
	}
	r.log.Debug("retention", "deleted", len(del), "oldest_snapshot_txid", oldestKept)
	return nil
}

// prunable lists the files of levels, listed at now, that retention
// deletes (see EnforceRetention), and the MaxTXID of the oldest snapshot
// it keeps (0 if none).
func (r *Replicator) prunable(levels [][]*ltx.FileInfo, now time.Time) (del []*ltx.FileInfo, oldestKept ltx.TXID) {
	snaps := levels[storage.SnapshotLevel]
	for i, s := range snaps {
		if r.opts.SnapshotRetention > 0 && i < len(snaps)-1 && s.CreatedAt.Before(now.Add(-r.opts.SnapshotRetention)) {
			del = append(del, s)
			continue
		}
		if oldestKept == 0 || s.MaxTXID < oldestKept {
			oldestKept = s.MaxTXID
		}
	}

	top := len(r.opts.CompactionIntervals)
	for level := 0; level < storage.SnapshotLevel; level++ {
		// The next level's compaction starts after its newest file: the
		// files of this level up to there are no longer its input.
		passed := ltx.TXID(math.MaxUint64)
		if level < top {
			passed = newestTXID(levels[level+1])
		}
		files := levels[level]
		for i, f := range files {
			if i == len(files)-1 || f.MaxTXID > passed {
				continue
			}
			restored := oldestKept != 0 && f.MaxTXID < oldestKept // no restore we keep reaches it
			if level == 0 {
				restored = restored || coveredBy(levels[1:storage.SnapshotLevel], f)
				if !restored || !r.l0Expired(f, now) {
					continue
				}
			}
			if restored {
				del = append(del, f)
			}
		}
	}
	return del, oldestKept
}

// keepPublished takes out of del the files that a manifest readers may
// be reading names: the current one, and those replaced within
// ManifestGrace (see Options.ManifestGrace).
func (r *Replicator) keepPublished(del []*ltx.FileInfo, now time.Time) []*ltx.FileInfo {
	if r.opts.NoManifest || len(del) == 0 {
		return del
	}
	keep := r.publishedFiles(now)
	return slices.DeleteFunc(del, func(f *ltx.FileInfo) bool { return keep[keyOfInfo(f)] })
}

// dateL0Covers records when each L0 file was first seen covered by a file
// of a higher level (Compact records its inputs' as it writes L1), and
// forgets the files that are gone. The date stays when the covering file
// goes, compacted further and pruned.
func (r *Replicator) dateL0Covers(levels [][]*ltx.FileInfo, now time.Time) {
	listed := make(map[ltx.TXID]bool, len(levels[0]))
	for _, f := range levels[0] {
		listed[f.MaxTXID] = true
		if _, ok := r.l0CoveredAt[f.MaxTXID]; !ok && coveredBy(levels[1:], f) {
			r.l0CoveredAt[f.MaxTXID] = now
		}
	}
	for txid := range r.l0CoveredAt {
		if !listed[txid] {
			delete(r.l0CoveredAt, txid)
		}
	}
}

// l0Expired reports whether L0Retention has passed at now since a file of
// a higher level first covered the L0 file f.
func (r *Replicator) l0Expired(f *ltx.FileInfo, now time.Time) bool {
	at, ok := r.l0CoveredAt[f.MaxTXID]
	return ok && !at.After(now.Add(-max(r.opts.L0Retention, 0)))
}

// coveredBy reports whether a file of levels spans f.
func coveredBy(levels [][]*ltx.FileInfo, f *ltx.FileInfo) bool {
	for _, files := range levels {
		for _, g := range files {
			if g.MinTXID <= f.MinTXID && f.MaxTXID <= g.MaxTXID {
				return true
			}
		}
	}
	return false
}

// newestTXID is the MaxTXID of the newest of files (0 if none).
func newestTXID(files []*ltx.FileInfo) ltx.TXID {
	if len(files) == 0 {
		return 0
	}
	return files[len(files)-1].MaxTXID
}
