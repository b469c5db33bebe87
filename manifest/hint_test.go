package manifest_test

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// bigPage is a page that LZ4 cannot shrink much.
func bigPage(size uint32, pgno uint32) []byte {
	p := make([]byte, size)
	x := uint64(pgno)*0x9e3779b97f4a7c15 | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	return p
}

// interiorPage is a page that SQLite would take for a table interior page.
func interiorPage(size uint32, pgno uint32) []byte {
	p := bigPage(size, pgno)
	off := 0
	if pgno == 1 {
		off = 100
	}
	p[off] = 0x05
	return p
}

// sampleFile is a snapshot of 160 pages of 4 KiB (they do not compress
// much), pages 3 and 30 interior: page 30 lies past the first 64 KiB.
func sampleFile(t testing.TB) []byte {
	db := storagetest.NewDB(4096)
	pages := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 160; pgno++ {
		pages[pgno] = bigPage(4096, pgno)
	}
	pages[3], pages[30] = interiorPage(4096, 3), interiorPage(4096, 30)
	db.Apply(t, 40, pages)
	return db.Snapshot(t)
}

// frames returns the offset and size of each frame of an LTX file, from
// its page index as ltx decodes it, in file order.
func frames(t *testing.T, file []byte) (pgnos []uint32, elems []ltx.PageIndexElem) {
	t.Helper()
	dec := ltx.NewDecoder(bytes.NewReader(file))
	if err := dec.Verify(); err != nil {
		t.Fatal(err)
	}
	idx := dec.PageIndex()
	pgnos = slices.Sorted(maps.Keys(idx))
	for _, p := range pgnos {
		elems = append(elems, idx[p])
	}
	return pgnos, elems
}

func build(t testing.TB, level int, file []byte) *manifest.Hint {
	t.Helper()
	b := manifest.NewHintBuilder(level)
	var out bytes.Buffer
	w, finish := b.Tee(&out)
	// Odd chunks: the builder must not depend on how the bytes arrive.
	for rest := file; len(rest) > 0; {
		n := min(len(rest), 333)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	finish(nil)
	if !bytes.Equal(out.Bytes(), file) {
		t.Fatal("the tee changed the file")
	}
	h, err := b.Hint()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHintDescribesItsFile: the hint's page index, sizes and sums are
// exactly the file's frames as ltx's page index places them, its header
// and trailer are the file's, the copied frames are the file's own bytes
// (the first 64 KiB and the interior pages), and the encoded hint decodes
// to the same.
func TestHintDescribesItsFile(t *testing.T) {
	file := sampleFile(t)
	h := build(t, 9, file)
	dec := ltx.NewDecoder(bytes.NewReader(file))
	if err := dec.Verify(); err != nil {
		t.Fatal(err)
	}
	want := manifest.Source{Level: 9, MinTXID: 1, MaxTXID: 1, Size: int64(len(file)), FileChecksum: dec.Trailer().FileChecksum}
	if err := h.Describes(want); err != nil {
		t.Fatal(err)
	}
	if h.Header != dec.Header() || h.Trailer != dec.Trailer() {
		t.Error("header or trailer differ from the file's")
	}
	pgnos, elems := frames(t, file)
	if !slices.Equal(h.Pgnos, pgnos) {
		t.Fatalf("pages %v, want %v", h.Pgnos, pgnos)
	}
	for i, e := range elems {
		if int64(h.Sizes[i]) != e.Size || h.Sums[i] != manifest.Sum(file[e.Offset:e.Offset+e.Size]) {
			t.Errorf("frame %d (page %d): size %d sum %08x, want the file's", i, pgnos[i], h.Sizes[i], h.Sums[i])
		}
	}
	var copied []uint32
	for _, f := range h.Frames {
		e := elems[f.Ordinal]
		if !bytes.Equal(f.Data, file[e.Offset:e.Offset+e.Size]) {
			t.Errorf("copied frame of page %d differs from the file's", pgnos[f.Ordinal])
		}
		if e.Offset >= manifest.HeadFrameBytes {
			copied = append(copied, pgnos[f.Ordinal])
		}
	}
	if !slices.Equal(copied, []uint32{30}) {
		t.Errorf("interior pages copied past the head: %v, want [30]", copied)
	}
	if len(h.Frames) < 2 || h.Frames[0].Ordinal != 0 {
		t.Errorf("the head frames are not copied: %d frames", len(h.Frames))
	}

	got, err := manifest.DecodeHint(h.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Source() != h.Source() || got.Header != h.Header || !slices.Equal(got.Pgnos, h.Pgnos) || !slices.Equal(got.Sizes, h.Sizes) ||
		!slices.Equal(got.Sums, h.Sums) || len(got.Frames) != len(h.Frames) {
		t.Errorf("decoded %+v, encoded %+v", got.Source(), h.Source())
	}
}

// TestHintDamageDetected: any byte changed anywhere in a hint, or a hint
// cut short, is refused.
func TestHintDamageDetected(t *testing.T) {
	enc := build(t, 9, sampleFile(t)).Encode()
	for i := range enc {
		if i > 400 && i < len(enc)-8 && i%101 != 0 {
			continue // the fields, then every 101st byte of the copied frames
		}
		b := bytes.Clone(enc)
		b[i] ^= 0x10
		if _, err := manifest.DecodeHint(b); !errors.Is(err, manifest.ErrInvalidHint) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	for _, n := range []int{0, 7, 8, 40, len(enc) / 2, len(enc) - 1} {
		if _, err := manifest.DecodeHint(enc[:n]); !errors.Is(err, manifest.ErrInvalidHint) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

// TestHintNotForAnotherFile: a hint does not describe a file of another
// level, size or checksum.
func TestHintNotForAnotherFile(t *testing.T) {
	h := build(t, 3, sampleFile(t))
	src := h.Source()
	for _, s := range []manifest.Source{
		{Level: 2, MinTXID: 1, MaxTXID: 1, Size: src.Size, FileChecksum: src.FileChecksum},
		{Level: 3, MinTXID: 1, MaxTXID: 1, Size: src.Size + 1, FileChecksum: src.FileChecksum},
		{Level: 3, MinTXID: 1, MaxTXID: 1, Size: src.Size, FileChecksum: src.FileChecksum ^ 1},
		{Level: 3, MinTXID: 1, MaxTXID: 2, Size: src.Size},
	} {
		if h.Describes(s) == nil {
			t.Errorf("hint of %+v describes %+v", src, s)
		}
	}
	if err := h.Describes(manifest.Source{Level: 3, MinTXID: 1, MaxTXID: 1, Size: src.Size}); err != nil {
		t.Errorf("without a checksum to compare: %v", err)
	}
}

// TestBuilderNoHintForBrokenFile: a stream that is not a whole LTX file
// gives no hint, and the writer it tees to still gets every byte.
func TestBuilderNoHintForBrokenFile(t *testing.T) {
	file := sampleFile(t)
	for _, cut := range []int{50, len(file) / 2, len(file) - 3} {
		b := manifest.NewHintBuilder(9)
		var out bytes.Buffer
		w, finish := b.Tee(&out)
		if _, err := w.Write(file[:cut]); err != nil {
			t.Fatal(err)
		}
		finish(nil)
		if out.Len() != cut {
			t.Fatalf("cut at %d: the tee passed %d bytes", cut, out.Len())
		}
		if h, err := b.Hint(); err == nil {
			t.Fatalf("cut at %d: hint %+v", cut, h.Source())
		}
	}
	// An upload that fails ends the decoding without waiting for more.
	b := manifest.NewHintBuilder(9)
	w, finish := b.Tee(io.Discard)
	if _, err := w.Write(file[:100]); err != nil {
		t.Fatal(err)
	}
	finish(errors.New("upload failed"))
	if _, err := b.Hint(); err == nil {
		t.Fatal("a failed upload has a hint")
	}
}

func TestHintName(t *testing.T) {
	s := manifest.Source{Level: 9, MinTXID: 1, MaxTXID: 0x64, FileChecksum: 0x8000_0000_dead_beef}
	name := manifest.HintName(s)
	if name != "hints/L9-0000000000000001-0000000000000064-80000000deadbeef" {
		t.Fatalf("name %q", name)
	}
	got, err := manifest.ParseHintName(name)
	if err != nil || got != s {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	for _, bad := range []string{
		"hints/L9-0000000000000001-0000000000000064",
		"hints/L10-0000000000000001-0000000000000064-80000000deadbeef",
		"hints/L09-0000000000000001-0000000000000064-80000000deadbeef",
		"hints/L9-0000000000000001-0000000000000064-80000000DEADBEEF",
		"hints/0000000000000064-0000000000000064.ltx",
		"manifest",
	} {
		if _, err := manifest.ParseHintName(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
