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

// interiorPage is a page that SQLite would take for a table interior page.
func interiorPage(size uint32, pgno uint32) []byte {
	p := storagetest.FillPage(size, pgno, 7)
	off := 0
	if pgno == 1 {
		off = 100
	}
	p[off] = 0x05
	return p
}

// sampleFile is a snapshot of 40 pages, pages 3 and 9 interior.
func sampleFile(t *testing.T) []byte {
	db := storagetest.NewDB(1024)
	pages := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 40; pgno++ {
		pages[pgno] = storagetest.FillPage(1024, pgno, 1)
	}
	pages[3], pages[9] = interiorPage(1024, 3), interiorPage(1024, 9)
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

func build(t *testing.T, level int, file []byte) *manifest.Hint {
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

// TestHintDescribesItsFile: what the builder sums is exactly what a reader
// reads by range (the header, each frame at its page index offset, the
// tail after the last frame), the interior frames are the file's own
// bytes, and the encoded hint decodes to the same.
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
	if h.HeadSum != manifest.Sum(file[:ltx.HeaderSize]) {
		t.Error("head sum is not the header's CRC-32C")
	}
	pgnos, elems := frames(t, file)
	if len(h.FrameSums) != len(pgnos) {
		t.Fatalf("%d frame sums for %d frames", len(h.FrameSums), len(pgnos))
	}
	for i, e := range elems {
		if h.FrameSums[i] != manifest.Sum(file[e.Offset:e.Offset+e.Size]) {
			t.Errorf("frame sum %d (page %d) is not its frame's", i, pgnos[i])
		}
	}
	last := elems[len(elems)-1]
	if h.TailSum != manifest.Sum(file[last.Offset+last.Size:]) {
		t.Error("tail sum is not the CRC-32C of what follows the last frame")
	}
	var interior []uint32
	for _, f := range h.Interior {
		e := elems[f.Ordinal]
		if !bytes.Equal(f.Data, file[e.Offset:e.Offset+e.Size]) {
			t.Errorf("interior frame of page %d differs from the file's", pgnos[f.Ordinal])
		}
		interior = append(interior, pgnos[f.Ordinal])
	}
	if !slices.Equal(interior, []uint32{3, 9}) {
		t.Errorf("interior pages %v, want [3 9]", interior)
	}

	got, err := manifest.DecodeHint(h.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != h.Source || got.HeadSum != h.HeadSum || got.TailSum != h.TailSum || !slices.Equal(got.FrameSums, h.FrameSums) || len(got.Interior) != 2 {
		t.Errorf("decoded %+v, encoded %+v", got, h)
	}
}

// TestHintDamageDetected: any byte changed anywhere in a hint, or a hint
// cut short, is refused.
func TestHintDamageDetected(t *testing.T) {
	enc := build(t, 9, sampleFile(t)).Encode()
	for i := range enc {
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
	for _, s := range []manifest.Source{
		{Level: 2, MinTXID: 1, MaxTXID: 1, Size: h.Source.Size, FileChecksum: h.Source.FileChecksum},
		{Level: 3, MinTXID: 1, MaxTXID: 1, Size: h.Source.Size + 1, FileChecksum: h.Source.FileChecksum},
		{Level: 3, MinTXID: 1, MaxTXID: 1, Size: h.Source.Size, FileChecksum: h.Source.FileChecksum ^ 1},
	} {
		if h.Describes(s) == nil {
			t.Errorf("hint of %+v describes %+v", h.Source, s)
		}
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
			t.Fatalf("cut at %d: hint %+v", cut, h.Source)
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
