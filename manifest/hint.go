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

// A hint is what a reader needs of one LTX file to read it by ranges
// without reading its head and tail first, and to check every byte it
// reads of it:
//   - the file's level and size, and copies of its header and trailer (so
//     its TXIDs and file checksum, which the hint's name carries too: a
//     name only ever has one content);
//   - its page index: each frame's page number and size, in file order
//     (frames lie back to back from the end of the header);
//   - a CRC-32C of every frame, as stored;
//   - copies of some frames, bytes as stored in the file: the first ones
//     (page 1, the schema, the roots of the first tables) and those of the
//     B-tree interior pages, so that they come with the open.
//
// A hint ends with a CRC-32C of all of it: a torn or damaged hint is
// detected and ignored (its file is then read as a Litestream file is).
//
// Layout (big-endian): magic, level u32, size u64, header, trailer, frame
// count u32, per frame its page number as a uvarint delta from the
// previous one, its size as a uvarint and its CRC-32C u32; the copied
// frame count u32, per copied frame its ordinal as a uvarint delta from
// the previous one (the first: from -1) and its bytes; CRC-32C u32.
//
// The same encoding without copied frames describes the small files a
// manifest names (see Manifest).
const hintMagic = "LTXHINT3"

// HintDir is the object folder of hints.
const HintDir = "hints"

// WholeFileMax is the size up to which readers read an LTX file whole,
// checking it against its file checksum before using any page of it; only
// larger files get a hint object.
const WholeFileMax = 64 << 10

const (
	// MaxHintFrameBytes bounds the interior frames a hint copies: a
	// database with more (tens of gigabytes) gets a hint without them.
	MaxHintFrameBytes = 64 << 20
	// HeadFrameBytes is how much of the start of a file a hint copies.
	HeadFrameBytes = 64 << 10
)

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
	Level   int
	Size    int64
	Header  ltx.Header
	Trailer ltx.Trailer
	Pgnos   []uint32 // the page of each frame, ascending (file order)
	Sizes   []uint32 // the size of each frame
	Sums    []uint32 // the CRC-32C of each frame
	Frames  []Frame  // copies of frames, in file order
}

// Frame is a copy of a page frame of a file: its ordinal among the file's
// frames and its bytes (page header and LZ4 block).
type Frame struct {
	Ordinal uint32
	Data    []byte
}

// Source is the file the hint describes.
func (h *Hint) Source() Source {
	return Source{Level: h.Level, MinTXID: h.Header.MinTXID, MaxTXID: h.Header.MaxTXID, Size: h.Size, FileChecksum: h.Trailer.FileChecksum}
}

// ErrInvalidHint is wrapped by every error of DecodeHint.
var ErrInvalidHint = errors.New("invalid hint")

// Encode returns the hint's bytes.
func (h *Hint) Encode() []byte {
	n := len(hintMagic) + 4 + 8 + ltx.HeaderSize + ltx.TrailerSize + 4 + 14*len(h.Pgnos) + 4 + 4
	for _, f := range h.Frames {
		n += 5 + len(f.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, hintMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(h.Level))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Size))
	hdr, _ := h.Header.MarshalBinary() // never fails
	trailer, _ := h.Trailer.MarshalBinary()
	b = append(append(b, hdr...), trailer...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Pgnos)))
	prev := uint32(0)
	for i, pgno := range h.Pgnos {
		b = binary.AppendUvarint(b, uint64(pgno-prev))
		b = binary.AppendUvarint(b, uint64(h.Sizes[i]))
		b = binary.BigEndian.AppendUint32(b, h.Sums[i])
		prev = pgno
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Frames)))
	next := uint32(0)
	for _, f := range h.Frames {
		b = binary.AppendUvarint(b, uint64(f.Ordinal-next))
		b = append(b, f.Data...)
		next = f.Ordinal + 1
	}
	return binary.BigEndian.AppendUint32(b, Sum(b))
}

// DecodeHint decodes and checks a hint read from storage: its own CRC, its
// header and trailer (as ltx checks them), a page index in ascending page
// order whose frames fit in the file, and copied frames that match their
// frames' sizes and sums. The frames alias b.
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
	h := &Hint{Level: int(r.u32()), Size: int64(r.u64())}
	hdr, trailer := r.bytes(ltx.HeaderSize), r.bytes(ltx.TrailerSize)
	if r.err {
		return fail("cut short")
	}
	if err := h.Header.UnmarshalBinary(hdr); err != nil {
		return fail("header: %v", err)
	}
	if err := h.Header.Validate(); err != nil {
		return fail("header: %v", err)
	}
	if err := h.Trailer.UnmarshalBinary(trailer); err != nil {
		return fail("trailer: %v", err)
	}
	if err := h.Trailer.Validate(h.Header); err != nil {
		return fail("trailer: %v", err)
	}
	if h.Level < 0 || h.Level > storage.SnapshotLevel {
		return fail("level %d", h.Level)
	}
	n := r.u32()
	if r.err || uint64(n)*6 > uint64(len(r.b)) {
		return fail("%d frames do not fit in %d bytes", n, len(b))
	}
	h.Pgnos, h.Sizes, h.Sums = make([]uint32, n), make([]uint32, n), make([]uint32, n)
	end := int64(ltx.HeaderSize) // where the next frame starts
	prev := uint64(0)
	for i := range h.Pgnos {
		delta, size := r.uvarint(), r.uvarint()
		h.Sums[i] = r.u32()
		pgno := prev + delta
		switch {
		case r.err:
			return fail("page index cut short at frame %d", i)
		case delta == 0 || pgno > uint64(h.Header.Commit):
			return fail("frame %d is of page %d (after page %d, commit %d)", i, pgno, prev, h.Header.Commit)
		case size <= ltx.PageHeaderSize || size > uint64(h.Size):
			return fail("frame %d (page %d) is %d bytes", i, pgno, size)
		}
		h.Pgnos[i], h.Sizes[i], prev = uint32(pgno), uint32(size), pgno
		end += int64(size)
	}
	// The page block, its end marker, the index's size and the trailer
	// fit in the file.
	if end+ltx.PageHeaderSize+8+ltx.TrailerSize > h.Size {
		return fail("frames end at %d, past what a %d-byte file holds", end, h.Size)
	}
	copied := r.u32()
	if r.err || copied > n {
		return fail("%d copied frames of %d", copied, n)
	}
	h.Frames = make([]Frame, copied)
	next := uint64(0)
	for i := range h.Frames {
		ord := next + r.uvarint()
		if r.err || ord >= uint64(n) {
			return fail("copied frame %d has ordinal %d of %d frames", i, ord, n)
		}
		data := r.bytes(h.Sizes[ord])
		if r.err {
			return fail("copied frame of page %d runs past the end", h.Pgnos[ord])
		}
		if Sum(data) != h.Sums[ord] {
			return fail("copied frame of page %d does not match its sum", h.Pgnos[ord])
		}
		h.Frames[i] = Frame{Ordinal: uint32(ord), Data: data}
		next = ord + 1
	}
	if len(r.b) != 0 {
		return fail("%d bytes left over", len(r.b))
	}
	return h, nil
}

// Describes reports whether the hint describes exactly the file s, and
// says how it differs otherwise. A zero Size or FileChecksum in s is not
// compared (a listing gives no checksum).
func (h *Hint) Describes(s Source) error {
	got := h.Source()
	if s.Size == 0 {
		got.Size = 0
	}
	if s.FileChecksum == 0 {
		got.FileChecksum = 0
	}
	if got != s {
		return fmt.Errorf("hint %s describes %s of %d bytes with checksum %s, not %s of %d bytes with checksum %s",
			HintName(h.Source()), h.Source().Name(), h.Size, h.Trailer.FileChecksum, s.Name(), s.Size, s.FileChecksum)
	}
	return nil
}

// reader reads big-endian fields and uvarints, remembering whether it ran
// out.
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

func (r *reader) uvarint() uint64 {
	if r.err {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}
