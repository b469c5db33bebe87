package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/compact"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// Compact merges the files of level-1 written since the last compaction
// into one file at level (1..8) with the ltx Compactor, streamed from
// storage to storage. The file carries the Compactor's header: its
// timestamp is the newest input's, the commit time of its last TXID. It
// returns nil, nil when there is nothing to compact.
func (r *Replicator) Compact(ctx context.Context, level int) (*ltx.FileInfo, error) {
	if level < 1 || level >= storage.SnapshotLevel {
		return nil, fmt.Errorf("compact: level %d is not a compaction level (1..%d)", level, storage.SnapshotLevel-1)
	}
	r.maintMu.Lock()
	defer r.maintMu.Unlock()
	if err := r.Err(); err != nil {
		return nil, err
	}
	hint := r.newHint(level)
	info, inputs, err := compactLevel(ctx, r.client, level, hint)
	if err != nil {
		r.unsure() // its output may have landed
		return nil, err
	}
	if info == nil {
		return nil, nil
	}
	h, hintSize := r.writeHint(ctx, hint)
	r.describeWritten(ctx, info, h, hintSize)
	r.m.compaction(level)
	r.m.uploadedBytes.Add(float64(info.Size))
	if level == 1 { // L0 retention counts from now (see EnforceRetention)
		now := time.Now()
		for _, in := range inputs {
			if _, ok := r.l0CoveredAt[in.MaxTXID]; !ok {
				r.l0CoveredAt[in.MaxTXID] = now
			}
		}
	}
	r.log.Debug("compacted", "file", storage.FileName(level, info.MinTXID, info.MaxTXID), "bytes", info.Size)
	return info, r.publish(ctx)
}

// compactLevel compacts into level the run of level-1 files that follows
// the newest file of level, handing the output's bytes to hint. It returns
// the file written and its inputs.
func compactLevel(ctx context.Context, c storage.Client, level int, hint *manifest.HintBuilder) (*ltx.FileInfo, []*ltx.FileInfo, error) {
	dst, err := storage.ListLevel(ctx, c, level, 0, false)
	if err != nil {
		return nil, nil, fmt.Errorf("list L%d of %s: %w", level, c, err)
	}
	var seek ltx.TXID
	if len(dst) > 0 {
		seek = dst[len(dst)-1].MaxTXID + 1
	}
	src, err := storage.ListLevel(ctx, c, level-1, seek, false)
	if err != nil {
		return nil, nil, fmt.Errorf("list L%d of %s: %w", level-1, c, err)
	}
	// The inputs must follow the destination and each other without a
	// gap: stop at the first file that does not.
	var inputs []*ltx.FileInfo
	next := seek
	for _, info := range src {
		if next != 0 && info.MinTXID != next {
			break
		}
		inputs = append(inputs, info)
		next = info.MaxTXID + 1
	}
	if len(src) > 0 && len(inputs) == 0 {
		return nil, nil, fmt.Errorf("compact L%d of %s: L%d resumes at %s, after a gap from %s",
			level, c, level-1, storage.FileName(level-1, src[0].MinTXID, src[0].MaxTXID), seek)
	}
	if len(inputs) == 0 {
		return nil, nil, nil
	}
	minTXID, maxTXID := inputs[0].MinTXID, inputs[len(inputs)-1].MaxTXID

	ins, closeAll, err := compact.Open(ctx, c, inputs)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll()
	// A file that tracks checksums cannot follow one that does not in a
	// compaction (its pre-apply checksum would be missing): compact the
	// run up to the change now, the rest next time.
	if minTXID != 1 {
		for i, in := range ins {
			if in.Header().NoChecksum() != ins[0].Header().NoChecksum() {
				ins, inputs = ins[:i], inputs[:i]
				break
			}
		}
	}
	maxTXID = inputs[len(inputs)-1].MaxTXID
	pr, pw := io.Pipe()
	go func() {
		w, finish := teeHint(hint, pw)
		err := compact.To(ctx, w, ins)
		finish(err)
		pw.CloseWithError(err)
	}()
	info, err := c.WriteLTXFile(ctx, level, minTXID, maxTXID, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return nil, nil, fmt.Errorf("compact %s: %w", storage.FileName(level, minTXID, maxTXID), err)
	}
	return info, inputs, nil
}
