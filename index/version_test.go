package index

import (
	"runtime"
	"testing"
	"time"

	"github.com/superfly/ltx"
)

// syntheticFile makes the page index of a file holding pgnos, with frames of
// 100 bytes, without encoding anything.
func syntheticFile(pageSize uint32, min, max ltx.TXID, commit uint32, pgnos []uint32) *fileIndex {
	fx := &fileIndex{
		file: &File{
			Info:   ltx.FileInfo{Level: 0, MinTXID: min, MaxTXID: max, CreatedAt: time.Unix(int64(max), 0)},
			Header: ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: pageSize, Commit: commit, MinTXID: min, MaxTXID: max},
		},
		pgnos: pgnos,
		sizes: make([]uint32, len(pgnos)),
	}
	for i := range fx.sizes {
		fx.sizes[i] = 100
	}
	return fx
}

func snapshotPages(pageSize, commit uint32) []uint32 {
	var pgnos []uint32
	for pgno := uint32(1); pgno <= commit; pgno++ {
		if pgno != ltx.LockPgno(pageSize) {
			pgnos = append(pgnos, pgno)
		}
	}
	return pgnos
}

func TestLookupBounds(t *testing.T) {
	const pageSize = 65536 // the lock page is 16385
	lock := ltx.LockPgno(pageSize)
	v, err := buildVersion([]*fileIndex{syntheticFile(pageSize, 1, 1, lock+10, snapshotPages(pageSize, lock+10))})
	if err != nil {
		t.Fatal(err)
	}
	for pgno, want := range map[uint32]bool{0: false, 1: true, lock - 1: true, lock: false, lock + 1: true, lock + 10: true, lock + 11: false} {
		e, ok := v.Lookup(pgno)
		if ok != want {
			t.Errorf("Lookup(%d) = %v, want %v", pgno, ok, want)
		}
		if ok && (e.Size != 100 || e.Offset != ltx.HeaderSize+int64(pgno-1-min(1, pgno/lock))*100) {
			t.Errorf("Lookup(%d) = offset %d size %d", pgno, e.Offset, e.Size)
		}
	}
}

// TestChunkFileTableCompacts: a chunk that saw more files than its 16-bit
// file numbers can name drops the ones no page refers to.
func TestChunkFileTableCompacts(t *testing.T) {
	c := &chunk{slots: new([chunkSize]slot)}
	var last *File
	for i := range maxChunkFiles + 100 {
		f := &File{Info: ltx.FileInfo{MaxTXID: ltx.TXID(i + 1)}}
		c.slots[1] = slot{offset: 1, size: 1, file: c.fileIndex(f)}
		c.slots[2] = slot{offset: 1, size: 1, file: c.fileIndex(f)}
		last = f
	}
	if len(c.files) > maxChunkFiles {
		t.Fatalf("chunk names %d files", len(c.files))
	}
	if c.files[c.slots[1].file] != last || c.files[c.slots[2].file] != last {
		t.Fatal("slots lost their file in a compaction")
	}
	c.compact()
	if len(c.files) != 1 {
		t.Fatalf("after compaction the chunk names %d files, want 1", len(c.files))
	}
}

// BenchmarkIndexMemory measures what a version costs per indexed page, and
// what the page index of a file kept for later builds costs (the target is
// at most 40 bytes a page in all; a benchmark, as targets are, not a test).
func BenchmarkIndexMemory(b *testing.B) {
	const pages = 100_000
	var perVersion, perFile float64
	for b.Loop() {
		before := heapInUse()
		fx := syntheticFile(4096, 1, 1, pages, snapshotPages(4096, pages))
		afterFile := heapInUse()
		v, err := buildVersion([]*fileIndex{fx})
		if err != nil {
			b.Fatal(err)
		}
		afterVersion := heapInUse()
		perVersion = float64(afterVersion-afterFile) / pages
		perFile = float64(afterFile-before) / pages
		runtime.KeepAlive(v)
		runtime.KeepAlive(fx)
	}
	b.ReportMetric(perVersion, "B/page-version")
	b.ReportMetric(perFile, "B/page-file")
	b.ReportMetric(perVersion+perFile, "B/page")
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkExtend is the cost of a poll that brings one small L0 file to a
// 100,000-page version.
func BenchmarkExtend(b *testing.B) {
	const pages = 100_000
	snap := syntheticFile(4096, 1, 1, pages, snapshotPages(4096, pages))
	v, err := buildVersion([]*fileIndex{snap})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		txid := v.txid + 1
		a, c := uint32(i*7919)%(pages-1)+2, uint32(i*104729)%(pages-1)+2
		pgnos := []uint32{1, min(a, c), max(a, c)}
		if a == c {
			pgnos = pgnos[:2]
		}
		next := v.extend([]*fileIndex{snap, syntheticFile(4096, txid, txid, pages, pgnos)}, nil, nil)
		if next == nil || next.txid != txid {
			b.Fatal("did not extend")
		}
		v = next
	}
}

func BenchmarkLookup(b *testing.B) {
	const pages = 100_000
	v, err := buildVersion([]*fileIndex{syntheticFile(4096, 1, 1, pages, snapshotPages(4096, pages))})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var pgno uint32
	for b.Loop() {
		pgno = pgno*1103515245 + 12345
		if _, ok := v.Lookup(pgno%pages + 1); !ok {
			b.Fatal("missing page")
		}
	}
}
