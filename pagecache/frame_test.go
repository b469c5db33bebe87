package pagecache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// oldFrame encodes a page in the frame format ltx wrote before block
// frames: a page header without the size flag, then an LZ4 frame.
func oldFrame(t testing.TB, pgno uint32, page []byte) []byte {
	var buf bytes.Buffer
	var hdr [ltx.PageHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], pgno)
	buf.Write(hdr[:])
	zw := lz4.NewWriter(&buf)
	if _, err := zw.Write(page); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecodeBothFrameFormats: a page decodes from a block frame and from an
// old-format frame, and a frame holding a page of another size is refused
// in both.
func TestDecodeBothFrameFormats(t *testing.T) {
	_, files := newTestReplica(t, 4)
	ref := files[0].refs[3]
	block := files[0].data[ref.Offset : ref.Offset+ref.Size]
	want := files[0].pages[3]
	old := oldFrame(t, 3, want)

	for name, frame := range map[string][]byte{"block": block, "old": old} {
		r := ref
		r.Size = int64(len(frame))
		got, err := decodeFrame(r, frame)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s frame: %v", name, err)
		}
		if cap(got) != len(want) {
			t.Fatalf("%s frame: the page holds %d bytes of capacity, want %d", name, cap(got), len(want))
		}
		r.PageSize = pageSize * 2
		if _, err := decodeFrame(r, frame); !errors.Is(err, ltx.ErrInvalidFile) {
			t.Fatalf("%s frame decoded as a %d-byte page: %v", name, r.PageSize, err)
		}
	}
	big := storagetest.FillPage(pageSize*2, 3, 1)
	r := ref
	frame := oldFrame(t, 3, big)
	r.Size = int64(len(frame))
	if _, err := decodeFrame(r, frame); !errors.Is(err, ltx.ErrInvalidFile) {
		t.Fatalf("old frame of a larger page decoded: %v", err)
	}
}

// BenchmarkDecodeFrame: decoding a 4 KiB page, against ltx.DecodePageData
// (which decompresses into a 64 KiB buffer).
func BenchmarkDecodeFrame(b *testing.B) {
	const ps = 4096
	page := storagetest.FillPage(ps, 7, 1)
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		b.Fatal(err)
	}
	if err := enc.EncodeHeader(ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: ps, Commit: 7, MinTXID: 2, MaxTXID: 2, Timestamp: 1}); err != nil {
		b.Fatal(err)
	}
	if err := enc.EncodePage(ltx.PageHeader{Pgno: 7}, page); err != nil {
		b.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	file := buf.Bytes()
	var frameEnd int64
	dec := ltx.NewDecoder(bytes.NewReader(file))
	if err := dec.Verify(); err != nil {
		b.Fatal(err)
	}
	e := dec.PageIndex()[7]
	frameEnd = e.Offset + e.Size
	frame := file[e.Offset:frameEnd]
	ref := Ref{Key: Key{Pgno: 7}, Offset: e.Offset, Size: e.Size, PageSize: ps}
	b.Run("decodeFrame", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(ps)
		for b.Loop() {
			if _, err := decodeFrame(ref, frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The check every frame read by range gets before it is decoded (what
	// index.File.CheckFrame does: a binary search of the file's pages and
	// a CRC-32C of the frame), beside decoding alone.
	b.Run("checkAndDecode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(ps)
		r := ref
		r.Check = crcChecker{pgnos: []uint32{3, 5, 7, 9}, sums: []uint32{0, 0, crc32.Checksum(frame, crc32.MakeTable(crc32.Castagnoli)), 0}}
		for b.Loop() {
			if _, err := checkAndDecode(r, frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ltx.DecodePageData", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(ps)
		for b.Loop() {
			if _, data, err := ltx.DecodePageData(frame); err != nil || len(data) != ps {
				b.Fatal(err)
			}
		}
	})
}

// crcChecker checks frames as index.File does, for benchmarks.
type crcChecker struct {
	pgnos, sums []uint32
}

func (c crcChecker) CheckFrame(pgno uint32, frame []byte) error {
	i, ok := slices.BinarySearch(c.pgnos, pgno)
	if !ok || crc32.Checksum(frame, castagnoli) != c.sums[i] {
		return errors.New("frame checksum mismatch")
	}
	return nil
}
