package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// hintRequest says whether and how to read the hint of a file (see
// storage.HintLevel).
type hintRequest struct {
	listed *ltx.FileInfo // the hint as listed, if it was
	probe  bool          // read it by name although no listing showed it
	max    int64         // the largest hint worth reading
}

func (h hintRequest) wanted() bool { return h.max > 0 && (h.listed != nil || h.probe) }

// hintInfo names the hint of the file described by info.
func hintInfo(info *ltx.FileInfo) *ltx.FileInfo {
	return &ltx.FileInfo{Level: storage.HintLevel, MinTXID: info.MaxTXID, MaxTXID: info.MaxTXID}
}

// readHint reads the hint of a file whole: nil when there is none (a probe
// that finds nothing) or when it is larger than h.max.
func readHint(ctx context.Context, client storage.Client, sem chan struct{}, info *ltx.FileInfo, h hintRequest) ([]byte, error) {
	if h.listed != nil {
		if h.listed.Size > h.max || h.listed.Size < minFileSize {
			return nil, nil
		}
		return readRange(ctx, client, sem, h.listed, 0, h.listed.Size)
	}
	hi := hintInfo(info)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	rc, err := client.OpenLTXFile(ctx, hi.Level, hi.MinTXID, hi.MaxTXID, 0, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read hint %s: %w", storage.FileName(hi.Level, hi.MinTXID, hi.MaxTXID), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, h.max+1))
	if err != nil {
		return nil, fmt.Errorf("read hint %s: %w", storage.FileName(hi.Level, hi.MinTXID, hi.MaxTXID), err)
	}
	if int64(len(b)) > h.max {
		return nil, nil
	}
	return b, nil
}

// checkHint decodes the hint b of file f with ltx and returns its frames.
// A hint is never trusted: it must name f by f's file checksum and
// describe f's page size and commit, its file checksum and its pages'
// checksum must hold, and every page must be one f's commit allows.
func checkHint(f *File, b []byte) ([]Frame, error) {
	name := storage.FileName(storage.HintLevel, f.Info.MaxTXID, f.Info.MaxTXID)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("hint %s of %s: %s", name, f.Name(), fmt.Sprintf(format, args...))
	}
	dec := ltx.NewDecoder(bytes.NewReader(b))
	if err := dec.DecodeHeader(); err != nil {
		return nil, fail("header: %v", err)
	}
	hdr, want := dec.Header(), storage.HintHeader(f.Header, f.Trailer.FileChecksum)
	switch {
	case hdr.PreApplyChecksum != want.PreApplyChecksum:
		return nil, fail("describes the file with checksum %s, not this one (%s)", hdr.PreApplyChecksum, want.PreApplyChecksum)
	case hdr.PageSize != want.PageSize || hdr.Commit != want.Commit || hdr.MinTXID != want.MinTXID || hdr.MaxTXID != want.MaxTXID:
		return nil, fail("header (page size %d, commit %d, TXIDs %s-%s) does not match the file's", hdr.PageSize, hdr.Commit, hdr.MinTXID, hdr.MaxTXID)
	}
	var pgnos []uint32
	var sum ltx.Checksum
	data := make([]byte, hdr.PageSize)
	for {
		var ph ltx.PageHeader
		err := dec.DecodePage(&ph, data)
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, fail("page %d: %v", len(pgnos)+1, err)
		}
		pgnos = append(pgnos, ph.Pgno)
		sum ^= ltx.ChecksumPage(ph.Pgno, data)
	}
	if err := dec.Close(); err != nil {
		return nil, fail("%v", err)
	}
	if got := dec.Trailer().PostApplyChecksum; got != ltx.ChecksumFlag|sum {
		return nil, fail("pages checksum to %s, the trailer says %s", ltx.ChecksumFlag|sum, got)
	}
	elems := dec.PageIndex()
	frames := make([]Frame, 0, len(pgnos))
	for _, pgno := range pgnos {
		e, ok := elems[pgno]
		if !ok || e.Offset < ltx.HeaderSize || e.Size <= ltx.PageHeaderSize || e.Offset+e.Size > int64(len(b)) {
			return nil, fail("page index entry of page %d is out of the file", pgno)
		}
		frames = append(frames, Frame{Pgno: pgno, Data: b[e.Offset : e.Offset+e.Size]})
	}
	return frames, nil
}
