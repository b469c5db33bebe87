package index

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// BenchmarkFetchFileIndex reads the page index of a snapshot of 250,000
// pages (a 1 GiB database of 4 KiB pages) from memory: the CPU of an open.
func BenchmarkFetchFileIndex(b *testing.B) {
	const n = 250_000
	db := storagetest.NewDB(4096)
	pages := make(map[uint32][]byte, n)
	page := make([]byte, 4096)
	for pgno := uint32(1); pgno <= n; pgno++ {
		pages[pgno] = page
	}
	file := db.Apply(b, n, pages)
	mem := mem.New()
	mem.Put(storage.SnapshotLevel, 1, 1, file, fuzzEpoch)
	info := &ltx.FileInfo{Level: storage.SnapshotLevel, MinTXID: 1, MaxTXID: 1, Size: int64(len(file))}
	sem := make(chan struct{}, 4)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := fetchFileIndex(context.Background(), mem, sem, info, hintRequest{}); err != nil {
			b.Fatal(err)
		}
	}
	// Wall time is noisy on a shared machine: CPU time is what an open pays.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

// cpuTime is the process's CPU time (user and system), garbage collection
// included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
