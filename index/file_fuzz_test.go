package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/fuzzseed"
	"github.com/ltxvfs/ltxvfs/manifest"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// FuzzFileIndex feeds arbitrary bytes to the header, trailer and page-index
// parsing the VFS relies on, through Update as the VFS calls it (with a
// frame sink and hints): as a whole LTX file (small files are read in one
// request), or as the tail spliced over the end of a real file larger than
// the tail guess (a head read and a tail read, and a third read when the
// index reaches further back); and arbitrary bytes as the file's hint.
//
// The file is named from its own header when that parses, so that inputs
// get past the name check: a snapshot (L9) when it starts at TXID 1, else a
// compaction (L1) after a snapshot made to end right before it. Properties:
// Update never panics; it fails with an error naming the file, or returns a
// version whose every page lies inside a file's page block, at or below
// Commit; every frame the sink gets is of a page the version serves from
// that file, passes the file's frame checks, and decodes (if it does) to
// the page the file holds there, or is a frame its hint copies.
func FuzzFileIndex(f *testing.F) {
	headAndTail(f) // the big file is read by a head and a tail read
	fuzzseed.Write(f, fileIndexSeeds(f))
	big, _ := fuzzBigFile(f)
	f.Fuzz(func(t *testing.T, data []byte, tail bool, hint []byte) {
		file := data
		if tail {
			// The big file's header stays, so its name does too.
			keep := len(big) - min(len(data), len(big)-ltx.HeaderSize)
			file = append(bytes.Clone(big[:keep]), data[len(data)-(len(big)-keep):]...)
		}
		checkFuzzedFile(t, file, hint)
	})
}

var fuzzEpoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type sunkFrame struct {
	file string
	pgno uint32
	data []byte
}

func checkFuzzedFile(t *testing.T, file, hint []byte) {
	mem := mem.New()
	level, minTXID, maxTXID, pageSize := 0, ltx.TXID(1), ltx.TXID(1), uint32(512)
	var hdr ltx.Header
	if hdr.UnmarshalBinary(file) == nil && hdr.MinTXID > 0 && hdr.MaxTXID >= hdr.MinTXID {
		minTXID, maxTXID = hdr.MinTXID, hdr.MaxTXID
		if ltx.IsValidPageSize(hdr.PageSize) {
			pageSize = hdr.PageSize
		}
	}
	if minTXID == 1 {
		level = storage.SnapshotLevel
	} else {
		level = 1
		mem.Put(storage.SnapshotLevel, 1, minTXID-1, fuzzBase(t, pageSize, minTXID-1), fuzzEpoch)
	}
	mem.Put(level, minTXID, maxTXID, file, fuzzEpoch.Add(time.Second))
	if len(hint) > 0 {
		// Under the name a hint of this content would have, so that a
		// fuzzed hint that decodes is read as the file's.
		src := manifest.Source{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, FileChecksum: ltx.ChecksumFlag | 1}
		if h, err := manifest.DecodeHint(hint); err == nil {
			src = h.Source()
			src.Level, src.MinTXID, src.MaxTXID = level, minTXID, maxTXID
		}
		if _, err := mem.WriteObject(context.Background(), manifest.HintName(src), bytes.NewReader(hint), storage.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	name := storage.FileName(level, minTXID, maxTXID)

	var sunk []sunkFrame
	x := New(mem, Options{Concurrency: 2, Logger: slog.New(slog.DiscardHandler), HintFrameBytes: 1 << 20, Frames: func(f *File, frames []Frame) {
		for _, fr := range frames {
			sunk = append(sunk, sunkFrame{f.Name(), fr.Pgno, bytes.Clone(fr.Data)})
		}
	}})
	v, err := x.Update(context.Background())
	if err != nil {
		if !strings.Contains(err.Error(), name) {
			t.Fatalf("error does not name %s: %v", name, err)
		}
		return
	}
	if v.TXID() != maxTXID {
		t.Fatalf("version at TXID %d, want %d", v.TXID(), maxTXID)
	}
	if _, ok := v.Lookup(0); ok {
		t.Fatal("Lookup(0) found a page")
	}
	if c := v.Commit(); c < ^uint32(0) {
		if _, ok := v.Lookup(c + 1); ok {
			t.Fatalf("Lookup(%d) found a page above the commit of %d pages", c+1, c)
		}
	}
	sizes := map[string]int64{}
	for _, f := range v.Files() {
		sizes[f.Name()] = f.Info.Size
	}
	check := func(pgno uint32) {
		e, ok := v.Lookup(pgno)
		if !ok {
			return
		}
		size, known := sizes[e.File.Name()]
		switch {
		case !known:
			t.Fatalf("page %d: entry in %s, not a file of the version", pgno, e.File.Name())
		case pgno > e.File.Header.Commit:
			t.Fatalf("page %d: entry in %s, whose commit is %d pages", pgno, e.File.Name(), e.File.Header.Commit)
		case e.Offset < ltx.HeaderSize || e.Size <= ltx.PageHeaderSize:
			t.Fatalf("page %d: frame of %d bytes at %d in %s", pgno, e.Size, e.Offset, e.File.Name())
		case e.Offset+e.Size > size-ltx.TrailerSize-indexSizeLen-1-ltx.PageHeaderSize:
			// The page block ends before the end marker, the index (at
			// least its own end marker) and its size field.
			t.Fatalf("page %d: frame [%d,+%d) in %s runs past the page block of a %d-byte file", pgno, e.Offset, e.Size, e.File.Name(), size)
		}
	}
	c := v.Commit()
	for pgno := uint32(1); pgno <= min(c, 4096); pgno++ {
		check(pgno)
	}
	for pgno := max(c, 4096) - 64; pgno <= c && pgno > 4096; pgno++ {
		check(pgno)
	}

	bytesOf := map[string][]byte{storage.FileName(level, minTXID, maxTXID): file}
	for _, fr := range sunk {
		e, ok := v.Lookup(fr.pgno)
		if !ok || e.File.Name() != fr.file {
			t.Fatalf("the sink got page %d of %s, which the version does not serve from it", fr.pgno, fr.file)
		}
		b, ok := bytesOf[fr.file]
		if !ok {
			continue // the base snapshot
		}
		if err := e.File.CheckFrame(fr.pgno, fr.data); err != nil {
			t.Fatalf("the sink got a frame of page %d of %s that its checks refuse: %v", fr.pgno, fr.file, err)
		}
		hdr, got, err := ltx.DecodePageData(fr.data)
		if err != nil || hdr.Pgno != fr.pgno {
			continue // the cache refuses it
		}
		got = bytes.Clone(got)
		fhdr, want, err := ltx.DecodePageData(b[e.Offset : e.Offset+e.Size])
		if err == nil && fhdr.Pgno == fr.pgno && !bytes.Equal(got, want) && !fromHint(hint, fr.data) {
			t.Fatalf("the sink got page %d of %s with bytes neither the file nor its hint hold there", fr.pgno, fr.file)
		}
	}
}

// fromHint reports whether frame is one a hint copies. A hint that
// describes a file's header, trailer and page index exactly is taken at
// its word for the frames it copies (they match its own sums): only a
// crafted hint, never a damaged one, can differ from the file there.
func fromHint(hint, frame []byte) bool {
	h, err := manifest.DecodeHint(hint)
	if err != nil {
		return false
	}
	for _, f := range h.Frames {
		if bytes.Equal(f.Data, frame) {
			return true
		}
	}
	return false
}

// fuzzBase is a one-page snapshot [1,maxTXID] without checksums, which any
// file starting at maxTXID+1 continues.
func fuzzBase(tb testing.TB, pageSize uint32, maxTXID ltx.TXID) []byte {
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err == nil {
		err = enc.EncodeHeader(ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: pageSize, Commit: 1, MinTXID: 1, MaxTXID: maxTXID, Timestamp: fuzzEpoch.UnixMilli()})
	}
	if err == nil {
		err = enc.EncodePage(ltx.PageHeader{Pgno: 1}, make([]byte, pageSize))
	}
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		tb.Fatalf("encode the base snapshot: %v", err)
	}
	return buf.Bytes()
}

// fuzzBigFile is a snapshot [1,2] of 400 incompressible 512-byte pages,
// larger than a head and a tail read together, the same in every run,
// and its database.
func fuzzBigFile(tb testing.TB) ([]byte, *storagetest.DB) {
	db := storagetest.NewDB(512)
	db.Now = func() time.Time { return fuzzEpoch }
	rng := rand.New(rand.NewPCG(1, 2))
	pages := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 400; pgno++ {
		p := make([]byte, 512)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		pages[pgno] = p
	}
	db.Apply(tb, 400, pages)
	db.Apply(tb, 400, map[uint32][]byte{400: pages[1]})
	b := db.Snapshot(tb)
	if len(b) <= tailGuess {
		tb.Fatalf("the big file is %d bytes, not over the tail guess", len(b))
	}
	return b, db
}

// fileIndexSeeds are real files as the writer and Litestream make them,
// and the damage seen in the field: truncation, zero length, wrong magic.
func fileIndexSeeds(tb testing.TB) []fuzzseed.Seed {
	if !fuzzseed.Writing() {
		return nil
	}
	db := storagetest.NewDB(512)
	clock := fuzzEpoch
	db.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	all := map[uint32][]byte{}
	for pgno := uint32(1); pgno <= 6; pgno++ {
		all[pgno] = storagetest.FillPage(512, pgno, 1)
	}
	snap1 := db.Apply(tb, 6, all)
	l0a := db.Apply(tb, 6, map[uint32][]byte{2: storagetest.FillPage(512, 2, 2), 5: storagetest.FillPage(512, 5, 2)})
	l0b := db.Apply(tb, 8, map[uint32][]byte{7: storagetest.FillPage(512, 7, 3), 8: storagetest.FillPage(512, 8, 3)})
	shrink := db.Apply(tb, 3, map[uint32][]byte{1: storagetest.FillPage(512, 1, 4)})
	l1 := storagetest.Compact(tb, l0a, l0b, shrink)
	snap := db.Snapshot(tb)

	wide := storagetest.NewDB(65536)
	wide.Now = db.Now
	wideSnap := wide.Apply(tb, 2, map[uint32][]byte{1: storagetest.FillPage(65536, 1, 1), 2: storagetest.FillPage(65536, 2, 1)})

	wrongMagic := bytes.Clone(l0a)
	copy(wrongMagic, "XXXX")
	noChecksum := fuzzBase(tb, 4096, 3)
	big, _ := fuzzBigFile(tb)

	seeds := []fuzzseed.Seed{
		fuzzseed.New("snapshot-txid1", snap1, false, []byte{}),
		fuzzseed.New("l0", l0a, false, []byte{}),
		fuzzseed.New("l0-grows", l0b, false, []byte{}),
		fuzzseed.New("l0-shrinks", shrink, false, []byte{}),
		fuzzseed.New("l1-compacted", l1, false, []byte{}),
		fuzzseed.New("snapshot", snap, false, []byte{}),
		fuzzseed.New("snapshot-64k-pages", wideSnap, false, []byte{}),
		fuzzseed.New("no-checksum", noChecksum, false, []byte{}),
		fuzzseed.New("zero-length", []byte{}, false, []byte{}),
		fuzzseed.New("header-only", l0a[:ltx.HeaderSize], false, []byte{}),
		fuzzseed.New("truncated-half", l0a[:len(l0a)/2], false, []byte{}),
		fuzzseed.New("truncated-trailer", l0a[:len(l0a)-10], false, []byte{}),
		fuzzseed.New("wrong-magic", wrongMagic, false, []byte{}),
		fuzzseed.New("not-ltx", []byte("SQLite format 3\x00 this is a database, not an LTX file"), false, []byte{}),
		fuzzseed.New("big-tail", big[len(big)-200:], true, []byte{}),
		fuzzseed.New("big-unchanged", []byte{}, true, []byte{}),
		fuzzseed.New("big-index-size", sizeField(big, uint64(len(big)-ltx.HeaderSize-200)), true, []byte{}),
	}
	// Hints of the snapshot and the compaction, good and damaged (only a
	// file larger than manifest.WholeFileMax has its hint read).
	hintOf := func(level int, file []byte) []byte {
		h, err := manifest.BuildHint(level, bytes.NewReader(file))
		if err != nil {
			tb.Fatal(err)
		}
		return h.Encode()
	}
	snapHint := hintOf(storage.SnapshotLevel, snap)
	l1Hint := hintOf(1, l1)
	bigHint := hintOf(storage.SnapshotLevel, big)
	flipped := bytes.Clone(snapHint)
	flipped[len(flipped)/2] ^= 0x40
	seeds = append(seeds,
		fuzzseed.New("snapshot-hint", snap, false, snapHint),
		fuzzseed.New("l1-hint", l1, false, l1Hint),
		fuzzseed.New("snapshot-hint-flipped", snap, false, flipped),
		fuzzseed.New("snapshot-hint-truncated", snap, false, snapHint[:len(snapHint)-20]),
		fuzzseed.New("snapshot-hint-of-another-file", snap, false, l1Hint),
		fuzzseed.New("big-hint", []byte{}, true, bigHint),
		fuzzseed.New("big-hint-truncated", []byte{}, true, bigHint[:len(bigHint)-9]),
	)
	return seeds
}

// sizeField is the tail of file from its page-index size field on, with the
// field set to n.
func sizeField(file []byte, n uint64) []byte {
	tail := bytes.Clone(file[len(file)-ltx.TrailerSize-indexSizeLen:])
	binary.BigEndian.PutUint64(tail, n)
	return tail
}
