package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// EnforceRetention deletes what the retention policy no longer keeps:
//
//   - snapshots older than SnapshotRetention, the newest always kept;
//   - files of levels 1..8 that end below the oldest kept snapshot, once a
//     file of the next level covers them (the newest file of each level is
//     kept: the next compaction starts after it);
//   - L0 files covered by an L1 file that has been visible for
//     L0Retention (readers that planned with them have moved on), the
//     newest L0 file always kept (it records the WAL position a restarted
//     writer resumes from).
//
// Nothing is deleted that a restore of a TXID at or after the oldest kept
// snapshot needs, and nothing before the file that replaces it is listed.
func (r *Replicator) EnforceRetention(ctx context.Context) error {
	r.maintMu.Lock()
	defer r.maintMu.Unlock()
	now := time.Now()
	levels := make([][]*ltx.FileInfo, storage.SnapshotLevel+1)
	for level := range levels {
		infos, err := storage.ListLevel(ctx, r.client, level, 0, false)
		if err != nil {
			return fmt.Errorf("retention: list L%d of %s: %w", level, r.client, err)
		}
		levels[level] = infos
	}
	var del []*ltx.FileInfo

	// Snapshots.
	var oldestKept ltx.TXID
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

	// Levels 1..8: below the oldest kept snapshot and compacted further up
	// (or at the top compaction level).
	top := len(r.opts.CompactionIntervals)
	for level := 1; level < storage.SnapshotLevel; level++ {
		files := levels[level]
		for i, f := range files {
			if i == len(files)-1 || oldestKept == 0 || f.MaxTXID >= oldestKept {
				continue
			}
			if level < top && !covered(levels[level+1], f) {
				continue
			}
			del = append(del, f)
		}
	}

	// L0: covered by an L1 file visible for L0Retention; or, with no
	// compaction levels, below the oldest kept snapshot.
	for _, g := range levels[1] {
		if _, ok := r.l1SeenAt[g.MaxTXID]; !ok {
			r.l1SeenAt[g.MaxTXID] = now
		}
	}
	l0 := levels[0]
	for i, f := range l0 {
		if i == len(l0)-1 {
			continue
		}
		if top == 0 {
			if oldestKept != 0 && f.MaxTXID < oldestKept {
				del = append(del, f)
			}
			continue
		}
		for _, g := range levels[1] {
			if g.MinTXID <= f.MinTXID && f.MaxTXID <= g.MaxTXID && !r.l1SeenAt[g.MaxTXID].After(now.Add(-r.opts.L0Retention)) {
				del = append(del, f)
				break
			}
		}
	}
	// Forget L1 files that are gone.
	for txid := range r.l1SeenAt {
		if !hasMaxTXID(levels[1], txid) {
			delete(r.l1SeenAt, txid)
		}
	}

	// Hints whose file is gone.
	staleHints, legacy, err := r.staleHints(ctx, levels, del)
	if err != nil {
		r.log.Warn("retention: list hints", "err", err)
	}
	del = append(del, legacy...)

	if len(del) == 0 && len(staleHints) == 0 {
		return nil
	}
	if err := r.client.DeleteLTXFiles(ctx, del); err != nil {
		return fmt.Errorf("retention: delete %d files from %s: %w", len(del), r.client, err)
	}
	// After the files: a hint without its file is useless, a file without
	// its hint is read without its checks.
	if err := r.client.DeleteObjects(ctx, staleHints); err != nil {
		return fmt.Errorf("retention: delete %d hints from %s: %w", len(staleHints), r.client, err)
	}
	r.log.Debug("retention", "deleted", len(del), "oldest_snapshot_txid", oldestKept)
	return nil
}

// covered reports whether a file of files spans f.
func covered(files []*ltx.FileInfo, f *ltx.FileInfo) bool {
	for _, g := range files {
		if g.MinTXID <= f.MinTXID && f.MaxTXID <= g.MaxTXID {
			return true
		}
	}
	return false
}

func hasMaxTXID(files []*ltx.FileInfo, txid ltx.TXID) bool {
	for _, f := range files {
		if f.MaxTXID == txid {
			return true
		}
	}
	return false
}
