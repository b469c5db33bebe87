package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/superfly/ltx"

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
	hint := r.newHint()
	info, inputs, err := compactLevel(ctx, r.client, level, hint)
	if err != nil || info == nil {
		return info, err
	}
	r.writeHint(ctx, level, hint)
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
	return info, nil
}

// compactLevel compacts into level the run of level-1 files that follows
// the newest file of level, handing the output's pages to hint. It returns
// the file written and its inputs.
func compactLevel(ctx context.Context, c storage.Client, level int, hint *hintPages) (*ltx.FileInfo, []*ltx.FileInfo, error) {
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

	rdrs, closeAll, err := openInputs(ctx, c, inputs)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll()
	hdrs, err := peekHeaders(rdrs)
	if err != nil {
		return nil, nil, err
	}
	// A file that tracks checksums cannot follow one that does not in a
	// compaction (its pre-apply checksum would be missing): compact the
	// run up to the change now, the rest next time.
	if minTXID != 1 {
		for i := range hdrs {
			if hdrs[i].NoChecksum() != hdrs[0].NoChecksum() {
				rdrs, hdrs, inputs = rdrs[:i], hdrs[:i], inputs[:i]
				break
			}
		}
	}
	maxTXID = inputs[len(inputs)-1].MaxTXID
	pr, pw := io.Pipe()
	go func() {
		w, finish := hint.tee(pw)
		err := compactTo(ctx, w, rdrs, hdrs)
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

// openInputs opens every file whole, peeking at each header so that a run
// with a file that tracks no checksum compacts into one that tracks none.
func openInputs(ctx context.Context, c storage.Client, infos []*ltx.FileInfo) (rdrs []io.Reader, closeAll func(), err error) {
	var closers []io.Closer
	closeAll = func() {
		for _, cl := range closers {
			cl.Close()
		}
	}
	for _, info := range infos {
		var rc io.ReadCloser
		err := retry(ctx, func() (err error) {
			rc, err = c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
			return err
		})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, rc)
		rdrs = append(rdrs, &namedReader{r: rc, name: storage.FileName(info.Level, info.MinTXID, info.MaxTXID)})
	}
	return rdrs, closeAll, nil
}

// peekHeaders reads each input's header and leaves it to be read again.
func peekHeaders(rdrs []io.Reader) ([]ltx.Header, error) {
	hdrs := make([]ltx.Header, len(rdrs))
	for i, rd := range rdrs {
		nr := rd.(*namedReader)
		hdr, peeked, err := ltx.PeekHeader(nr.r)
		if err != nil {
			return nil, fmt.Errorf("read header of %s: %w", nr.name, err)
		}
		nr.r, hdrs[i] = peeked, hdr
	}
	return hdrs, nil
}

// compactTo runs the ltx Compactor over rdrs, whose headers are hdrs, into
// w. The output carries a checksum if the last input does: the Compactor
// gives it the last input's post-apply checksum, and the first input's
// pre-apply checksum, which a snapshot (MinTXID 1) never has anyway.
func compactTo(ctx context.Context, w io.Writer, rdrs []io.Reader, hdrs []ltx.Header) error {
	first, last := hdrs[0], hdrs[len(hdrs)-1]
	if first.MinTXID != 1 && first.NoChecksum() != last.NoChecksum() {
		return fmt.Errorf("compact %s..%s: files with and without checksums cannot be compacted together",
			rdrs[0].(*namedReader).name, rdrs[len(rdrs)-1].(*namedReader).name)
	}
	cmp, err := ltx.NewCompactor(w, rdrs)
	if err != nil {
		return err
	}
	if last.NoChecksum() {
		cmp.HeaderFlags = ltx.HeaderFlagNoChecksum
	}
	if err := cmp.Compact(ctx); err != nil {
		return fmt.Errorf("compact %s..%s: %w", rdrs[0].(*namedReader).name, rdrs[len(rdrs)-1].(*namedReader).name, err)
	}
	return nil
}

// namedReader names an input in errors.
type namedReader struct {
	r    io.Reader
	name string
}

func (n *namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read %s: %w", n.name, err)
	}
	return k, err
}

// retry runs fn up to three times, backing off, while it fails with an
// error that may pass (not a missing file, not the end of ctx): one open
// among the many of a compaction or a restore should not fail it whole.
func retry(ctx context.Context, fn func() error) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 3 || ctx.Err() != nil || errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
