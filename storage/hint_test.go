package storage_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

func TestIsInteriorPage(t *testing.T) {
	page := func(off int, typ byte) []byte {
		b := make([]byte, 512)
		b[off] = typ
		return b
	}
	for _, tt := range []struct {
		pgno uint32
		data []byte
		want bool
	}{
		{2, page(0, 0x05), true},   // table interior
		{2, page(0, 0x02), true},   // index interior
		{2, page(0, 0x0d), false},  // table leaf
		{2, page(0, 0x0a), false},  // index leaf
		{2, page(0, 0x00), false},  // free or overflow page
		{1, page(100, 0x05), true}, // page 1: after the database header
		{1, page(0, 0x05), false},
		{1, make([]byte, 50), false},
	} {
		if got := storage.IsInteriorPage(tt.pgno, tt.data); got != tt.want {
			t.Errorf("page %d with type byte: got %v, want %v", tt.pgno, got, tt.want)
		}
	}
}

// TestHintRoundTrip: a hint encodes with ltx, names its source by the
// source's file checksum, checksums its pages, and is stored and listed at
// HintLevel by the file backend, apart from the data levels.
func TestHintRoundTrip(t *testing.T) {
	db := storagetest.NewDB(512)
	pages := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 6; pgno++ {
		pages[pgno] = storagetest.FillPage(512, pgno, 1)
	}
	db.Apply(t, 6, pages)
	db.Apply(t, 6, pages)
	snap := db.Snapshot(t) // [1,2]
	dec := ltx.NewDecoder(bytes.NewReader(snap))
	if err := dec.Verify(); err != nil {
		t.Fatal(err)
	}
	src, sum := dec.Header(), dec.Trailer().FileChecksum

	var buf bytes.Buffer
	hp := []storage.HintPage{{Pgno: 2, Data: pages[2]}, {Pgno: 5, Data: pages[5]}}
	if err := storage.EncodeHint(&buf, src, sum, hp); err != nil {
		t.Fatal(err)
	}
	hd := ltx.NewDecoder(bytes.NewReader(buf.Bytes()))
	if err := hd.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	h := hd.Header()
	if h.PreApplyChecksum != sum || h.MinTXID != src.MaxTXID || h.MaxTXID != src.MaxTXID || h.Commit != src.Commit || h.PageSize != src.PageSize || h.IsSnapshot() {
		t.Fatalf("hint header %+v does not describe source %+v (checksum %s)", h, src, sum)
	}
	var want ltx.Checksum
	data := make([]byte, 512)
	for _, p := range hp {
		var ph ltx.PageHeader
		if err := hd.DecodePage(&ph, data); err != nil || ph.Pgno != p.Pgno || !bytes.Equal(data, p.Data) {
			t.Fatalf("hint page %d: %v", p.Pgno, err)
		}
		want ^= ltx.ChecksumPage(p.Pgno, p.Data)
	}
	if err := hd.DecodePage(&ltx.PageHeader{}, data); err != io.EOF {
		t.Fatalf("after the last page: %v", err)
	}
	if err := hd.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hd.Trailer().PostApplyChecksum; got != ltx.ChecksumFlag|want {
		t.Fatalf("post-apply checksum %s, want the pages' %s", got, ltx.ChecksumFlag|want)
	}
	if err := storage.EncodeHint(io.Discard, src, 0, hp); err == nil {
		t.Fatal("a hint without a source checksum encoded")
	}
	first := src
	first.MaxTXID = 1
	if err := storage.EncodeHint(io.Discard, first, sum, hp); err == nil {
		t.Fatal("a hint of a file ending at TXID 1 encoded (it would be a snapshot)")
	}

	ctx := context.Background()
	c := file.New(t.TempDir())
	if _, err := c.WriteLTXFile(ctx, storage.HintLevel, src.MaxTXID, src.MaxTXID, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	infos, err := storage.ListLevel(ctx, c, storage.HintLevel, 0, false)
	if err != nil || len(infos) != 1 || infos[0].Size != int64(buf.Len()) {
		t.Fatalf("hint level listing: %v, %v", infos, err)
	}
	all, err := storage.ListAll(ctx, c, false)
	if err != nil || len(all) != 0 {
		t.Fatalf("the data levels list %d files (%v), want none", len(all), err)
	}
}
