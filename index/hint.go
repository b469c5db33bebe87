package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
)

// maxHintRead bounds a hint read for its checksums: 4 bytes a page and the
// interior frames, about 60 MiB for a 10 GiB database.
const maxHintRead = 256 << 20

// hintRequest says where to look for the hint of a file (see
// manifest.Hint): the hints a listing showed for its level and TXID range,
// and whether to look for it by name once its checksum is known, when
// the listing showed none (a hint written between two listings).
type hintRequest struct {
	listed []string // object names
	byName bool
	cache  ObjectCache // nil: none
}

// ObjectCache keeps immutable objects (hints, whose name says their
// content) across restarts, so that a reader opens without reading them
// again. What it returns is checked as what storage returns is.
type ObjectCache interface {
	GetObject(name string) ([]byte, bool)
	PutObject(name string, b []byte)
	RemoveObject(name string)
}

// hintKey identifies the files a hint may describe, as a listing names
// them.
type hintKey struct {
	level    int
	min, max ltx.TXID
}

// frameSums are the CRC-32Cs of a file's page frames, in file order (the
// order of fileIndex.pgnos).
type frameSums struct {
	pgnos []uint32
	sums  []uint32
}

// CheckFrame checks a frame of page pgno of f, as read from storage,
// against the CRC-32C its writer published (or that the reader computed
// from the whole file, checked against its file checksum), before it is
// decoded. A file without such sums (written by Litestream) passes: its
// frames get only the checks of decoding.
func (f *File) CheckFrame(pgno uint32, frame []byte) error {
	s := f.sums
	if s == nil {
		return nil
	}
	i, ok := slices.BinarySearch(s.pgnos, pgno)
	if !ok {
		return fmt.Errorf("page %d of %s: %w: the file holds no such page", pgno, f.Name(), ltx.ErrChecksumMismatch)
	}
	if got := manifest.Sum(frame); got != s.sums[i] {
		return fmt.Errorf("page %d of %s: %w: the frame's CRC-32C is %08x, its writer published %08x: the file is damaged",
			pgno, f.Name(), ltx.ErrChecksumMismatch, got, s.sums[i])
	}
	return nil
}

// Verified reports whether every frame of f read by range is checked
// against a checksum (see CheckFrame).
func (f *File) Verified() bool { return f.sums != nil }

// readHint reads and decodes a hint object, from cache if it holds it,
// else from storage holding a slot of sem (and keeps it in cache).
func readHint(ctx context.Context, client storage.Client, sem chan struct{}, cache ObjectCache, name string) (*manifest.Hint, error) {
	if cache != nil {
		if b, ok := cache.GetObject(name); ok {
			if h, err := manifest.DecodeHint(b); err == nil {
				return h, nil
			}
			cache.RemoveObject(name) // damaged on disk: read it again
		}
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	b, _, err := storage.ReadAllObject(ctx, client, name, storage.ReadOptions{}, maxHintRead)
	if err != nil {
		return nil, err
	}
	h, err := manifest.DecodeHint(b)
	if err != nil {
		return nil, fmt.Errorf("hint %s: %w", name, err)
	}
	if cache != nil {
		cache.PutObject(name, b)
	}
	return h, nil
}

// readListedHint reads the hints a listing showed for a file and returns
// the one that describes it (its level, TXIDs and size as listed, and the
// checksum its name gives); nil, with the reasons, if none does or two
// do (a file written twice: its own trailer must then decide).
func readListedHint(ctx context.Context, client storage.Client, sem chan struct{}, cache ObjectCache, info *ltx.FileInfo, names []string) (*manifest.Hint, error) {
	hints := make([]*manifest.Hint, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			h, err := readHint(ctx, client, sem, cache, name)
			if err == nil {
				want, _ := manifest.ParseHintName(name)
				want.Size = info.Size
				err = h.Describes(want)
			}
			hints[i], errs[i] = h, err
		})
	}
	wg.Wait()
	var found *manifest.Hint
	for i, h := range hints {
		if errs[i] != nil {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%d hints describe %s", len(names), storage.FileName(info.Level, info.MinTXID, info.MaxTXID))
		}
		found = h
	}
	if found == nil {
		return nil, errors.Join(errs...)
	}
	return found, nil
}

// indexFromHint builds the page index of a file from its hint, with the
// checks of a page index read from the file, and the frame sums that
// check every frame read: the file itself is not read.
func indexFromHint(info *ltx.FileInfo, h *manifest.Hint) (*fileIndex, error) {
	// The page block ends before its end marker, an index of at least
	// one byte, the index's size and the trailer.
	blockEnd := info.Size - ltx.PageHeaderSize - 1 - indexSizeLen - ltx.TrailerSize
	fb := newIndexBuilder(info, h.Header, h.Trailer, blockEnd, len(h.Pgnos))
	off := int64(ltx.HeaderSize)
	for i, pgno := range h.Pgnos {
		if err := fb.add(pgno, off, int64(h.Sizes[i])); err != nil {
			return nil, err
		}
		off += int64(h.Sizes[i])
	}
	fx, err := fb.finish(false)
	if err != nil {
		return nil, err
	}
	fx.file.sums = &frameSums{pgnos: fx.pgnos, sums: h.Sums}
	return fx, nil
}

// useHint takes the frame sums of a hint found by name for a file whose
// page index was read from the file: the hint must describe the same
// header, trailer and frames, or the file is damaged.
func (fx *fileIndex) useHint(h *manifest.Hint) error {
	if h.Header != fx.file.Header || h.Trailer != fx.file.Trailer {
		return damagedf(fx.file, "its header or trailer differs from what its writer published")
	}
	if !slices.Equal(h.Pgnos, fx.pgnos) || !slices.Equal(h.Sizes, fx.sizes) {
		return damagedf(fx.file, "its page index differs from what its writer published")
	}
	fx.file.sums = &frameSums{pgnos: fx.pgnos, sums: h.Sums}
	return nil
}

func sourceOf(f *File) manifest.Source {
	return manifest.Source{Level: f.Info.Level, MinTXID: f.Info.MinTXID, MaxTXID: f.Info.MaxTXID, Size: f.Info.Size, FileChecksum: f.Trailer.FileChecksum}
}

// sumWhole computes the frame sums of a file read whole, after its file
// checksum was checked: later reads of its pages by range are then checked
// as a hinted file's are.
func (fx *fileIndex) sumWhole(whole []byte) {
	sums := make([]uint32, len(fx.pgnos))
	off := int64(ltx.HeaderSize)
	for i, size := range fx.sizes {
		sums[i] = manifest.Sum(whole[off : off+int64(size)])
		off += int64(size)
	}
	fx.file.sums = &frameSums{pgnos: fx.pgnos, sums: sums}
}

// hintFrames returns the frames a hint copies, as frames of its file.
func (fx *fileIndex) hintFrames(h *manifest.Hint) []Frame {
	out := make([]Frame, 0, len(h.Frames))
	for _, f := range h.Frames {
		out = append(out, Frame{Pgno: fx.pgnos[f.Ordinal], Data: f.Data})
	}
	return out
}

// damagedf reports a file whose bytes are not what its writer wrote; the
// error matches ltx.ErrChecksumMismatch.
func damagedf(f *File, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s: the file is damaged", f.Name(), ltx.ErrChecksumMismatch, fmt.Sprintf(format, args...))
}
