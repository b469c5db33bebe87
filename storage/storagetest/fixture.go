package storagetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/storage"
)

// CheckLitestreamFixture checks that c, a replica loaded with the
// Litestream-layout fixture (fixture.Copy for a file replica, fixture.Upload
// plus planted foreign keys for any other), lists and reads it exactly as
// the manifest says:
//
//   - every level 0..9 lists exactly the manifest's files, in order, with
//     their sizes and header timestamps (listed with useMetadata), and
//     nothing of the foreign files; a seek lists exactly the files from it;
//     storage.ListAll lists them all, level by level, in one list;
//   - every file read whole has the manifest's SHA-256, decodes and
//     verifies with the ltx decoder, and its header and trailer agree with
//     the manifest's TXIDs, timestamps, page counts and rolling checksums;
//     a file starting at TXID 1 holds every page and sums to the checksum;
//   - ranged reads of the trailer, the page index and single pages return
//     what the whole file holds there, as the VFS reads them;
//   - a file that is not there (beside a foreign temp file of that name)
//     is os.ErrNotExist.
//
// Timestamps are compared strictly, so c must be loaded as above, never
// from a fresh checkout of testdata whose mtimes git did not keep.
func CheckLitestreamFixture(tb testing.TB, c storage.Client, m *fixture.Manifest) {
	tb.Helper()
	ctx := context.Background()

	for level := 0; level <= storage.SnapshotLevel; level++ {
		infos, err := storage.ListLevel(ctx, c, level, 0, true)
		if err != nil {
			tb.Fatalf("list level %d of %s: %v", level, c, err)
		}
		checkListing(tb, fmt.Sprintf("level %d from TXID %s", level, ltx.TXID(0)), infos, m.FilesAt(level))
	}
	all, err := storage.ListAll(ctx, c, true)
	if err != nil {
		tb.Fatalf("list every level of %s: %v", c, err)
	}
	var want []fixture.File
	for level := 0; level <= storage.SnapshotLevel; level++ {
		want = append(want, m.FilesAt(level)...)
	}
	checkListing(tb, "every level", all, want)
	l0 := m.FilesAt(0)
	seek := l0[len(l0)/2].MinTXID
	infos, err := storage.ListLevel(ctx, c, 0, seek, true)
	if err != nil {
		tb.Fatalf("list level 0 of %s from TXID %s: %v", c, seek, err)
	}
	checkListing(tb, fmt.Sprintf("level 0 from TXID %s", seek), infos, l0[len(l0)/2:])

	for _, f := range m.Files {
		checkFixtureFile(tb, c, m, f)
	}

	// The fixture plants ltx/0/0000000000000013-0000000000000013.ltx.tmp.
	if _, err := c.OpenLTXFile(ctx, 0, 0x13, 0x13, 0, 0); !errors.Is(err, os.ErrNotExist) {
		tb.Errorf("open %s, which is only a foreign temp file: %v, want os.ErrNotExist", storage.FileName(0, 0x13, 0x13), err)
	}
}

// checkListing compares the listing of what (a level, from a TXID) with
// the fixture's files.
func checkListing(tb testing.TB, what string, got []*ltx.FileInfo, want []fixture.File) {
	tb.Helper()
	names := func() (g, w []string) {
		for _, info := range got {
			g = append(g, storage.FileName(info.Level, info.MinTXID, info.MaxTXID))
		}
		for _, f := range want {
			w = append(w, storage.FileName(f.Level, f.MinTXID, f.MaxTXID))
		}
		return g, w
	}
	if len(got) != len(want) {
		g, w := names()
		tb.Fatalf("%s lists %d files %v, want %d %v", what, len(got), g, len(want), w)
	}
	for i, info := range got {
		f := want[i]
		if info.Level != f.Level || info.MinTXID != f.MinTXID || info.MaxTXID != f.MaxTXID {
			g, w := names()
			tb.Fatalf("%s lists %v, want %v", what, g, w)
		}
		if info.Size != f.Size {
			tb.Errorf("%s is listed with %d bytes, want %d", f.Path, info.Size, f.Size)
		}
		if !info.CreatedAt.Equal(f.CreatedAt()) {
			tb.Errorf("%s is listed with time %s, want the header timestamp %s", f.Path, info.CreatedAt.UTC().Format(ltx.RFC3339Milli), f.Timestamp)
		}
	}
}

func checkFixtureFile(tb testing.TB, c storage.Client, m *fixture.Manifest, f fixture.File) {
	tb.Helper()
	name := f.Path
	data := readRange(tb, c, f, 0, 0)
	sum := sha256.Sum256(data)
	if int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
		tb.Fatalf("%s: read %d bytes with sha256 %x, want %d bytes with sha256 %s", name, len(data), sum, f.Size, f.SHA256)
	}

	// Decode it whole, keeping the pages.
	dec := ltx.NewDecoder(bytes.NewReader(data))
	if err := dec.DecodeHeader(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	pages := map[uint32][]byte{}
	for {
		var ph ltx.PageHeader
		page := make([]byte, m.PageSize)
		if err := dec.DecodePage(&ph, page); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatalf("%s: decode page %d: %v", name, len(pages)+1, err)
		}
		pages[ph.Pgno] = page
	}
	if err := dec.Close(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}

	hdr, trailer := dec.Header(), dec.Trailer()
	post, _ := m.State(f.MaxTXID)
	var pre ltx.Checksum
	if f.MinTXID > 1 {
		s, _ := m.State(f.MinTXID - 1)
		pre = s.Checksum
	}
	if hdr.MinTXID != f.MinTXID || hdr.MaxTXID != f.MaxTXID || hdr.PageSize != m.PageSize || hdr.Commit != post.PageCount {
		tb.Errorf("%s: header TXIDs %s-%s, page size %d, commit %d; want %s-%s, %d, %d", name, hdr.MinTXID, hdr.MaxTXID, hdr.PageSize, hdr.Commit, f.MinTXID, f.MaxTXID, m.PageSize, post.PageCount)
	}
	if ts := time.UnixMilli(hdr.Timestamp).UTC(); !ts.Equal(f.CreatedAt()) {
		tb.Errorf("%s: header timestamp %s, want %s", name, ltx.FormatTimestamp(ts), f.Timestamp)
	}
	if hdr.PreApplyChecksum != pre || trailer.PostApplyChecksum != post.Checksum {
		tb.Errorf("%s: checksums %s -> %s, want %s -> %s", name, hdr.PreApplyChecksum, trailer.PostApplyChecksum, pre, post.Checksum)
	}
	if hdr.IsSnapshot() {
		var sum ltx.Checksum
		for pgno, page := range pages {
			sum ^= ltx.ChecksumPage(pgno, page)
		}
		if len(pages) != int(hdr.Commit) || ltx.ChecksumFlag|sum != post.Checksum {
			tb.Errorf("%s: %d pages summing to %s, want all %d pages of TXID %s summing to %s", name, len(pages), ltx.ChecksumFlag|sum, hdr.Commit, f.MaxTXID, post.Checksum)
		}
	}

	// Ranged reads, as the VFS makes them: the trailer, the page index
	// (whose last 8 bytes, just before the trailer, give its size), then
	// single pages.
	n := f.Size
	if got := readRange(tb, c, f, n-ltx.TrailerSize, ltx.TrailerSize); !bytes.Equal(got, data[n-ltx.TrailerSize:]) {
		tb.Fatalf("%s: ranged read of the trailer returned other bytes than the whole file holds", name)
	}
	tail := readRange(tb, c, f, n-ltx.TrailerSize-8, 8)
	indexSize := int64(binary.BigEndian.Uint64(tail))
	indexOff := n - ltx.TrailerSize - 8 - indexSize
	if indexSize <= 0 || indexOff < ltx.HeaderSize {
		tb.Fatalf("%s: page index size %d does not fit in the %d-byte file", name, indexSize, n)
	}
	raw := readRange(tb, c, f, indexOff, indexSize+8) // the index ends with its size
	index, err := ltx.DecodePageIndex(bufio.NewReader(bytes.NewReader(raw)), f.Level, f.MinTXID, f.MaxTXID)
	if err != nil {
		tb.Fatalf("%s: decode page index read by range: %v", name, err)
	}
	if !maps.EqualFunc(index, dec.PageIndex(), func(a, b ltx.PageIndexElem) bool { return a.Offset == b.Offset && a.Size == b.Size }) {
		tb.Fatalf("%s: the page index read by range differs from the decoder's", name)
	}
	if len(index) != len(pages) {
		tb.Fatalf("%s: page index has %d pages, the file %d", name, len(index), len(pages))
	}
	pgnos := slices.Sorted(maps.Keys(index))
	for _, pgno := range []uint32{pgnos[0], pgnos[len(pgnos)/2], pgnos[len(pgnos)-1]} {
		e := index[pgno]
		frame := readRange(tb, c, f, e.Offset, e.Size)
		ph, page, err := ltx.DecodePageData(frame)
		if err != nil {
			tb.Fatalf("%s: decode page %d read by range [%d,+%d): %v", name, pgno, e.Offset, e.Size, err)
		}
		if ph.Pgno != pgno || !bytes.Equal(page, pages[pgno]) {
			tb.Fatalf("%s: page %d read by range holds page %d with other bytes than the whole file", name, pgno, ph.Pgno)
		}
	}
}

// readRange reads size bytes at offset of a fixture file through c (the
// rest of the file when size is 0).
func readRange(tb testing.TB, c storage.Client, f fixture.File, offset, size int64) []byte {
	tb.Helper()
	rc, err := c.OpenLTXFile(context.Background(), f.Level, f.MinTXID, f.MaxTXID, offset, size)
	if err != nil {
		tb.Fatalf("open %s [%d,+%d) through %s: %v", f.Path, offset, size, c, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatalf("read %s [%d,+%d) through %s: %v", f.Path, offset, size, c, err)
	}
	if size > 0 && int64(len(b)) != size {
		tb.Fatalf("read %s [%d,+%d) through %s: got %d bytes", f.Path, offset, size, c, len(b))
	}
	return b
}
