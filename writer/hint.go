package writer

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/retry"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// Every file larger than manifest.WholeFileMax gets a hint (see
// manifest.Hint): the checksums of its header, page frames and tail, which
// let a reader check every byte it reads of the file by range, and copies
// of its B-tree interior pages, which a reader gets in one request at open
// instead of one per page on its first lookups. Smaller files are read
// whole and checked against their file checksum.

// newHint returns a builder for the hint of a file about to be written at
// level, or nil when neither a hint object nor the manifest (which
// describes each file from its hint) needs it.
func (r *Replicator) newHint(level int) *manifest.HintBuilder {
	if r.opts.NoHints && r.opts.NoManifest {
		return nil
	}
	return manifest.NewHintBuilder(level)
}

// teeHint passes a file's bytes to w and to b (see HintBuilder.Tee); with
// a nil b it is w itself.
func teeHint(b *manifest.HintBuilder, w io.Writer) (io.Writer, func(error)) {
	if b == nil {
		return w, func(error) {}
	}
	return b.Tee(w)
}

// writeHint uploads the hint built by b (see writeHintOf) and returns it
// with the size of its object (0 if none was written); nil when there is
// none. A hint is created, never replaced: its name says the content of
// its file, so one already there (an upload retried after it landed) is
// the same hint. A hint is an aid: failing to write one is logged and
// fails nothing (its file is then read without its checks, as a
// Litestream file is).
func (r *Replicator) writeHint(ctx context.Context, b *manifest.HintBuilder) (*manifest.Hint, int64) {
	if b == nil {
		return nil, 0
	}
	h, err := b.Hint()
	if err != nil {
		r.log.Warn("hint not written", "err", err)
		return nil, 0
	}
	return h, r.writeHintOf(ctx, h)
}

// writeHintOf uploads a file's hint, when hints are on and the file is
// large enough to be read by ranges, and returns the size of the hint
// object (0 when none was written).
func (r *Replicator) writeHintOf(ctx context.Context, h *manifest.Hint) int64 {
	if r.opts.NoHints || h.Size <= manifest.WholeFileMax {
		return 0
	}
	name := manifest.HintName(h.Source())
	data := h.Encode()
	err := retry.Do(ctx, func() error {
		_, err := r.client.WriteObject(ctx, name, bytes.NewReader(data), storage.WriteOptions{IfNoneMatch: true})
		if errors.Is(err, storage.ErrPreconditionFailed) {
			return nil
		}
		return err
	})
	if err != nil {
		r.log.Warn("hint not written", "hint", name, "err", err)
		return 0
	}
	r.log.Debug("hint written", "hint", name, "frames", len(h.Frames), "bytes", len(data))
	return int64(len(data))
}

// staleHints lists the hints whose file is gone once del is deleted: no
// file left has their level and TXID range. Hints of the first format
// (LTX files at storage.LegacyHintLevel, named after the TXID their file
// ends at) go once no file of levels 1..9 ends there.
func (r *Replicator) staleHints(ctx context.Context, levels [][]*ltx.FileInfo, del []*ltx.FileInfo) (stale []string, legacy []*ltx.FileInfo, err error) {
	type key struct {
		level    int
		min, max ltx.TXID
	}
	gone := map[key]bool{}
	for _, f := range del {
		gone[key{f.Level, f.MinTXID, f.MaxTXID}] = true
	}
	kept, ends := map[key]bool{}, map[ltx.TXID]bool{}
	for _, files := range levels {
		for _, f := range files {
			if k := (key{f.Level, f.MinTXID, f.MaxTXID}); !gone[k] {
				kept[k] = true
				if f.Level > 0 {
					ends[f.MaxTXID] = true
				}
			}
		}
	}
	hints, err := r.client.ListObjects(ctx, manifest.HintDir)
	if err != nil {
		return nil, nil, err
	}
	for _, h := range hints {
		if src, err := manifest.ParseHintName(h.Name); err == nil && !kept[key{src.Level, src.MinTXID, src.MaxTXID}] {
			stale = append(stale, h.Name)
		}
	}
	old, err := storage.ListLevel(ctx, r.client, storage.LegacyHintLevel, 0, false)
	if err != nil {
		return nil, nil, err
	}
	for _, h := range old {
		if !ends[h.MaxTXID] {
			legacy = append(legacy, h)
		}
	}
	return stale, legacy, nil
}
