package index

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"

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

// readHints reads the listed hints of a file, each whole: the ones that
// fail to read or decode are left out with a warning (a hint is an aid,
// and the file's own checks still apply).
func readHints(ctx context.Context, client storage.Client, sem chan struct{}, names []string, warn func(string, error)) []*manifest.Hint {
	var hints []*manifest.Hint
	for _, name := range names {
		h, err := readHint(ctx, client, sem, name)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, os.ErrNotExist) {
				warn(name, err)
			}
			continue
		}
		hints = append(hints, h)
	}
	return hints
}

func readHint(ctx context.Context, client storage.Client, sem chan struct{}, name string) (*manifest.Hint, error) {
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
	return h, nil
}

// pickHint returns, of hints, the one that describes the file fx was read
// from; nil if none does. A hint of the file's name and size that names
// another content means the file changed after its writer wrote it:
// that is an error, never a file read without its checks.
func pickHint(fx *fileIndex, hints []*manifest.Hint) (*manifest.Hint, error) {
	src := sourceOf(fx.file)
	var other *manifest.Hint
	for _, h := range hints {
		if h.Describes(src) == nil {
			return h, nil
		}
		if h.Source.Size == src.Size && h.Source.Level == src.Level && h.Source.MinTXID == src.MinTXID && h.Source.MaxTXID == src.MaxTXID {
			other = h
		}
	}
	if other != nil {
		return nil, damagedf(fx.file, "its trailer gives file checksum %s, but its writer published %s (hint %s)",
			src.FileChecksum, other.Source.FileChecksum, manifest.HintName(other.Source))
	}
	return nil, nil
}

func sourceOf(f *File) manifest.Source {
	return manifest.Source{Level: f.Info.Level, MinTXID: f.Info.MinTXID, MaxTXID: f.Info.MaxTXID, Size: f.Info.Size, FileChecksum: f.Trailer.FileChecksum}
}

// applyHint checks a file's header and tail (what follows its last frame)
// against the hint that describes it, and takes the frame sums from it.
// A mismatch means the file is damaged.
func (fx *fileIndex) applyHint(h *manifest.Hint, header []byte, tailSum uint32) error {
	switch {
	case h.PageSize != fx.file.Header.PageSize || h.Commit != fx.file.Header.Commit:
		return damagedf(fx.file, "its header gives page size %d and commit %d, its writer published %d and %d",
			fx.file.Header.PageSize, fx.file.Header.Commit, h.PageSize, h.Commit)
	case manifest.Sum(header) != h.HeadSum:
		return damagedf(fx.file, "its header does not match the CRC-32C its writer published")
	case tailSum != h.TailSum:
		return damagedf(fx.file, "its page index and trailer do not match the CRC-32C its writer published")
	case len(h.FrameSums) != len(fx.pgnos):
		return damagedf(fx.file, "its page index lists %d pages, its writer published sums of %d", len(fx.pgnos), len(h.FrameSums))
	}
	fx.file.sums = &frameSums{pgnos: fx.pgnos, sums: h.FrameSums}
	return nil
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

// hintFrames returns the interior frames of a hint as frames of its file.
func (fx *fileIndex) hintFrames(h *manifest.Hint) []Frame {
	out := make([]Frame, 0, len(h.Interior))
	for _, f := range h.Interior {
		out = append(out, Frame{Pgno: fx.pgnos[f.Ordinal], Data: f.Data})
	}
	return out
}

// damagedf reports a file whose bytes are not what its writer wrote; the
// error matches ltx.ErrChecksumMismatch.
func damagedf(f *File, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s: the file is damaged", f.Name(), ltx.ErrChecksumMismatch, fmt.Sprintf(format, args...))
}

// crcOf is the CRC-32C of the concatenation of parts.
func crcOf(parts ...[]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32.Update(c, crcTable, p)
	}
	return c
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)
