package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// A hint describes one LTX file that readers read by ranges, so that every
// byte they read of it can be checked and its B-tree interior pages come
// with the open:
//   - the file it describes: level, TXID range, size and file checksum (the
//     trailer's CRC-64), which its name carries too, so that a name only
//     ever has one content;
//   - a CRC-32C of the file's header, of everything after its last page
//     frame (the end-of-pages marker, the page index and its size, the
//     trailer), and of every page frame, in file order;
//   - copies of the frames of its B-tree interior pages, bytes as stored in
//     the file, each checked with its frame's CRC-32C like a frame read
//     from the file.
//
// The hint ends with a CRC-32C of all of it, so that a torn or damaged hint
// is detected and ignored (its file is then read as a Litestream file is,
// with the checks that need nothing from the writer).
//
// Layout (big-endian): magic, level u32, min u64, max u64, size u64, file
// checksum u64, page size u32, commit u32, head sum u32, tail sum u32,
// frame count u32, a sum u32 per frame, interior count u32, per interior
// frame its ordinal u32 and size u32, the interior frames' bytes, CRC u32.
const hintMagic = "LTXHINT2"

// HintDir is the object folder of hints.
const HintDir = "hints"

// WholeFileMax is the size up to which readers read an LTX file whole,
// checking it against its file checksum before using any page of it;
// such files get no hint.
const WholeFileMax = 64 << 10

// MaxHintFrameBytes bounds the interior frames a hint copies: a database
// with more (tens of gigabytes) gets a hint of checksums only.
const MaxHintFrameBytes = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sum is the CRC-32C that hints give a span of bytes.
func Sum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Source identifies the file a hint describes, by content.
type Source struct {
	Level            int
	MinTXID, MaxTXID ltx.TXID
	Size             int64
	FileChecksum     ltx.Checksum // the trailer's
}

// Name is "L<level>/<min>-<max>.ltx", for messages.
func (s Source) Name() string { return storage.FileName(s.Level, s.MinTXID, s.MaxTXID) }

// HintName is the object name of the hint of s:
// "hints/L<level>-<min>-<max>-<file checksum>", 16 hex digits each.
func HintName(s Source) string {
	return fmt.Sprintf("%s/L%d-%s-%s-%016x", HintDir, s.Level, s.MinTXID, s.MaxTXID, uint64(s.FileChecksum))
}

// ParseHintName reads what HintName wrote; Size is not in a name.
func ParseHintName(name string) (Source, error) {
	rest, ok := strings.CutPrefix(name, HintDir+"/L")
	parts := strings.Split(rest, "-")
	if !ok || len(parts) != 4 || len(parts[1]) != 16 || len(parts[2]) != 16 || len(parts[3]) != 16 {
		return Source{}, fmt.Errorf("%q is not a hint name", name)
	}
	level, err := strconv.Atoi(parts[0])
	if err != nil || level < 0 || level > storage.SnapshotLevel || strconv.Itoa(level) != parts[0] {
		return Source{}, fmt.Errorf("%q is not a hint name: level %q", name, parts[0])
	}
	var nums [3]uint64
	for i, p := range parts[1:] {
		if nums[i], err = strconv.ParseUint(p, 16, 64); err != nil || strings.ToLower(p) != p {
			return Source{}, fmt.Errorf("%q is not a hint name: %q", name, p)
		}
	}
	return Source{Level: level, MinTXID: ltx.TXID(nums[0]), MaxTXID: ltx.TXID(nums[1]), FileChecksum: ltx.Checksum(nums[2])}, nil
}

// Hint is a decoded hint.
type Hint struct {
	Source           Source
	PageSize, Commit uint32
	HeadSum, TailSum uint32
	FrameSums        []uint32 // one per page frame, in file order
	Interior         []Frame
}

// Frame is a copy of a page frame of the source file: its ordinal among
// the file's frames and its bytes (page header and LZ4 block).
type Frame struct {
	Ordinal uint32
	Data    []byte
}

// ErrInvalidHint is wrapped by every error of DecodeHint.
var ErrInvalidHint = errors.New("invalid hint")

// Encode returns the hint's bytes.
func (h *Hint) Encode() []byte {
	n := len(hintMagic) + 4 + 8*4 + 4*4 + 4 + 4*len(h.FrameSums) + 4 + 8*len(h.Interior) + 4
	for _, f := range h.Interior {
		n += len(f.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, hintMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(h.Source.Level))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Source.MinTXID))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Source.MaxTXID))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Source.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Source.FileChecksum))
	for _, v := range []uint32{h.PageSize, h.Commit, h.HeadSum, h.TailSum, uint32(len(h.FrameSums))} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	for _, s := range h.FrameSums {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Interior)))
	for _, f := range h.Interior {
		b = binary.BigEndian.AppendUint32(b, f.Ordinal)
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.Data)))
	}
	for _, f := range h.Interior {
		b = append(b, f.Data...)
	}
	return binary.BigEndian.AppendUint32(b, Sum(b))
}

// DecodeHint decodes and checks a hint read from storage: its own CRC, its
// counts and sizes, and that each interior frame matches its frame's sum.
// The frames alias b.
func DecodeHint(b []byte) (*Hint, error) {
	fail := func(format string, args ...any) (*Hint, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidHint, fmt.Sprintf(format, args...))
	}
	if len(b) < len(hintMagic)+4 || string(b[:len(hintMagic)]) != hintMagic {
		return fail("no hint header (%d bytes)", len(b))
	}
	body := b[:len(b)-4]
	if got, want := Sum(body), binary.BigEndian.Uint32(b[len(b)-4:]); got != want {
		return fail("CRC-32C is %08x, the hint says %08x: torn or damaged", got, want)
	}
	r := reader{b: body[len(hintMagic):]}
	h := &Hint{}
	h.Source.Level = int(r.u32())
	h.Source.MinTXID = ltx.TXID(r.u64())
	h.Source.MaxTXID = ltx.TXID(r.u64())
	h.Source.Size = int64(r.u64())
	h.Source.FileChecksum = ltx.Checksum(r.u64())
	h.PageSize, h.Commit, h.HeadSum, h.TailSum = r.u32(), r.u32(), r.u32(), r.u32()
	frames := r.u32()
	if r.err || uint64(frames)*4 > uint64(len(r.b)) {
		return fail("%d frame sums do not fit in %d bytes", frames, len(b))
	}
	h.FrameSums = make([]uint32, frames)
	for i := range h.FrameSums {
		h.FrameSums[i] = r.u32()
	}
	interior := r.u32()
	if r.err || uint64(interior)*8 > uint64(len(r.b)) {
		return fail("%d interior frames do not fit in %d bytes", interior, len(b))
	}
	sizes := make([]uint32, interior)
	h.Interior = make([]Frame, interior)
	for i := range h.Interior {
		h.Interior[i].Ordinal, sizes[i] = r.u32(), r.u32()
	}
	for i := range h.Interior {
		f := &h.Interior[i]
		if f.Ordinal >= frames || (i > 0 && f.Ordinal <= h.Interior[i-1].Ordinal) {
			return fail("interior frame %d has ordinal %d (of %d frames, ascending)", i, f.Ordinal, frames)
		}
		if f.Data = r.bytes(sizes[i]); r.err {
			return fail("interior frame %d (%d bytes) runs past the end", i, sizes[i])
		}
		if Sum(f.Data) != h.FrameSums[f.Ordinal] {
			return fail("interior frame %d does not match its frame's sum", f.Ordinal)
		}
	}
	switch {
	case r.err || len(r.b) != 0:
		return fail("%d bytes left over", len(r.b))
	case h.Source.Level < 0 || h.Source.Level > storage.SnapshotLevel:
		return fail("level %d", h.Source.Level)
	case h.Source.MinTXID == 0 || h.Source.MaxTXID < h.Source.MinTXID:
		return fail("TXIDs %s-%s", h.Source.MinTXID, h.Source.MaxTXID)
	case !ltx.IsValidPageSize(h.PageSize):
		return fail("page size %d", h.PageSize)
	}
	return h, nil
}

// Describes reports whether the hint describes exactly the file s (whose
// size and file checksum a reader took from the file or the manifest),
// and says how it differs otherwise.
func (h *Hint) Describes(s Source) error {
	if h.Source != s {
		return fmt.Errorf("hint %s describes %s of %d bytes with checksum %s, not %s of %d bytes with checksum %s",
			HintName(h.Source), h.Source.Name(), h.Source.Size, h.Source.FileChecksum, s.Name(), s.Size, s.FileChecksum)
	}
	return nil
}

// reader reads big-endian fields, remembering whether it ran out.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) bytes(n uint32) []byte {
	if r.err || uint64(n) > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
