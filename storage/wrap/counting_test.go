package wrap_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/mem"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

func TestCountingContract(t *testing.T) {
	storagetest.RunContract(t, func(t *testing.T) storage.Client {
		return wrap.NewCounting(file.New(t.TempDir()))
	})
}

func TestCountingIsExact(t *testing.T) {
	ctx := context.Background()
	c := wrap.NewCounting(file.New(t.TempDir()))
	files := storagetest.History(t, 3) // three L0, one L1, one L9

	var written int64
	for _, f := range files {
		storagetest.MustWrite(t, c, f)
		written += int64(len(f.Data))
	}
	want := wrap.Counts{Writes: 5, BytesWritten: written, PeakInFlight: 1}
	checkCounts(t, c, "after 5 writes", want)

	for level := 0; level <= storage.SnapshotLevel; level++ {
		if _, err := storage.ListLevel(ctx, c, level, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	want.Lists = 10
	checkCounts(t, c, "after listing 10 levels", want)
	if infos, err := storage.ListAll(ctx, c, false); err != nil || len(infos) != len(files) {
		t.Fatalf("ListAll: %d files, %v; want %d", len(infos), err, len(files))
	}
	want.Lists++
	checkCounts(t, c, "after listing every level at once", want)

	f := files[0]
	storagetest.ReadRange(t, c, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
	storagetest.ReadRange(t, c, f.Level, f.MinTXID, f.MaxTXID, 10, 20)
	storagetest.ReadRange(t, c, f.Level, f.MinTXID, f.MaxTXID, int64(len(f.Data))-16, 16)
	want.Opens += 3
	want.BytesRead += int64(len(f.Data)) + 20 + 16
	checkCounts(t, c, "after 3 reads", want)

	// A body opened and closed unread costs a request and no bytes; a
	// missing file still costs a request.
	rc, err := c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := c.OpenLTXFile(ctx, 0, 99, 99, 0, 0); err == nil {
		t.Fatal("opened a missing file")
	}
	want.Opens += 2
	checkCounts(t, c, "after an unread body and a missing file", want)

	// Part of a body: only what the caller consumed counts.
	rc, err = c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	want.Opens++
	want.BytesRead += 7
	checkCounts(t, c, "after reading 7 bytes of a body", want)

	if err := c.DeleteLTXFiles(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	want.Deletes = 2
	checkCounts(t, c, "after 2 deletes", want)
	if got := c.Counts().Requests(); got != 5+11+6+2 {
		t.Fatalf("Requests() = %d, want 24", got)
	}

	c.Reset()
	checkCounts(t, c, "after Reset", wrap.Counts{})
}

// levelByLevel hides its client's storage.AllLister.
type levelByLevel struct{ storage.Client }

// TestCountingListAllLevelByLevel: every level listed at once over storage
// that lists level by level (beneath another wrapper too) counts the
// listing of each level.
func TestCountingListAllLevelByLevel(t *testing.T) {
	ctx := context.Background()
	base := file.New(t.TempDir())
	files := storagetest.History(t, 3)
	for _, f := range files {
		storagetest.MustWrite(t, base, f)
	}
	for name, inner := range map[string]storage.Client{
		"levelByLevel":         levelByLevel{base},
		"Faulty(levelByLevel)": wrap.NewFaulty(levelByLevel{base}, wrap.FaultyConfig{}),
	} {
		c := wrap.NewCounting(inner)
		infos, err := storage.ListAll(ctx, c, false)
		if err != nil || len(infos) != len(files) {
			t.Fatalf("%s: ListAll: %d files, %v; want %d", name, len(infos), err, len(files))
		}
		if got := c.Counts().Lists; got != storage.SnapshotLevel+1 {
			t.Fatalf("%s: ListAll counted %d listings, want one per level", name, got)
		}
	}
}

func TestCountingInFlight(t *testing.T) {
	ctx := context.Background()
	c := wrap.NewCounting(file.New(t.TempDir()))
	f := storagetest.History(t, 1)[0]
	storagetest.MustWrite(t, c, f)
	c.Reset()

	var bodies []io.ReadCloser
	for range 3 {
		rc, err := c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, rc)
	}
	itr, err := c.LTXFiles(ctx, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, "with 3 open bodies and an open listing", wrap.Counts{Opens: 3, Lists: 1, InFlight: 4, PeakInFlight: 4})

	for itr.Next() {
	}
	itr.Close()
	// A body read to its end is done, even before Close.
	if _, err := io.ReadAll(bodies[0]); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, "after the listing and one body ended", wrap.Counts{Opens: 3, Lists: 1, BytesRead: int64(len(f.Data)), InFlight: 2, PeakInFlight: 4})
	for _, rc := range bodies {
		rc.Close()
		rc.Close() // closing twice must not count twice
	}
	checkCounts(t, c, "after closing all", wrap.Counts{Opens: 3, Lists: 1, BytesRead: int64(len(f.Data)), PeakInFlight: 4})
	c.Reset()
	checkCounts(t, c, "after Reset", wrap.Counts{})
}

func TestCountingConcurrent(t *testing.T) {
	ctx := context.Background()
	c := wrap.NewCounting(file.New(t.TempDir()))
	f := storagetest.History(t, 1)[0]
	storagetest.MustWrite(t, c, f)
	c.Reset()

	const workers, reads = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range reads {
				off := int64((w*reads + i) % 50)
				rc, err := c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, off, 10)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(b, f.Data[off:off+10]) {
					t.Errorf("read at %d: %v", off, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := c.Counts()
	if got.Opens != workers*reads || got.BytesRead != workers*reads*10 || got.InFlight != 0 {
		t.Fatalf("after %d concurrent 10-byte reads: %+v", workers*reads, got)
	}
	if got.PeakInFlight < 1 || got.PeakInFlight > workers {
		t.Fatalf("peak in flight %d with %d workers", got.PeakInFlight, workers)
	}
}

func checkCounts(t *testing.T, c *wrap.Counting, when string, want wrap.Counts) {
	t.Helper()
	if got := c.Counts(); got != want {
		t.Fatalf("%s:\n got %+v\nwant %+v", when, got, want)
	}
}

func TestCountingObjects(t *testing.T) {
	ctx := context.Background()
	c := wrap.NewCounting(mem.New())
	w := storagetest.MustWriteObject(t, c, "manifest", []byte("0123456789"), storage.WriteOptions{IfNoneMatch: true})
	if _, err := c.WriteObject(ctx, "manifest", bytes.NewReader([]byte("x")), storage.WriteOptions{IfNoneMatch: true}); err == nil {
		t.Fatal("created an existing object")
	}
	want := wrap.Counts{ObjectWrites: 2, BytesWritten: 11, PeakInFlight: 1}
	checkCounts(t, c, "after 2 object writes", want)

	storagetest.MustReadObject(t, c, "manifest", "")
	if _, _, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{IfNoneMatch: w.ETag}); !errors.Is(err, storage.ErrNotModified) {
		t.Fatal(err)
	}
	if _, _, err := c.ReadObject(ctx, "missing", storage.ReadOptions{}); err == nil {
		t.Fatal("read a missing object")
	}
	want.ObjectReads, want.ObjectNotModified, want.BytesRead = 3, 1, 10
	checkCounts(t, c, "after 3 object reads, one not modified", want)

	if _, err := c.ListObjects(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteObjects(ctx, []string{"manifest"}); err != nil {
		t.Fatal(err)
	}
	want.ObjectLists, want.ObjectDeletes = 1, 1
	checkCounts(t, c, "after a list and a delete", want)
	if got := c.Counts(); got.Requests() != 7 || got.ObjectRequests() != 7 {
		t.Fatalf("Requests() = %d, ObjectRequests() = %d, want 7", got.Requests(), got.ObjectRequests())
	}
	c.Reset()
	checkCounts(t, c, "after Reset", wrap.Counts{})
}
