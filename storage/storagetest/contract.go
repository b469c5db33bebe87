package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// RunContract checks the behaviour every storage.Client must have. newClient
// returns a client on an empty replica of its own each time it is called.
func RunContract(t *testing.T, newClient func(t *testing.T) storage.Client) {
	ctx := context.Background()

	t.Run("EmptyReplicaListsNothing", func(t *testing.T) {
		c := newClient(t)
		for level := 0; level <= storage.SnapshotLevel; level++ {
			infos, err := storage.ListLevel(ctx, c, level, 0, true)
			if err != nil {
				t.Fatalf("level %d: %v", level, err)
			}
			if len(infos) != 0 {
				t.Fatalf("level %d: listed %d files on an empty replica", level, len(infos))
			}
		}
	})

	t.Run("WriteListRead", func(t *testing.T) {
		c := newClient(t)
		files := History(t, 5)
		for _, f := range files {
			info, err := c.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data))
			if err != nil {
				t.Fatalf("write %s: %v", f, err)
			}
			if info.Size != int64(len(f.Data)) || info.MinTXID != f.MinTXID || info.MaxTXID != f.MaxTXID || info.Level != f.Level {
				t.Fatalf("write %s: got info %+v", f, info)
			}
			if !info.CreatedAt.Equal(f.Timestamp) {
				t.Fatalf("write %s: CreatedAt %v, want the header timestamp %v", f, info.CreatedAt, f.Timestamp)
			}
		}

		l0, err := storage.ListLevel(ctx, c, 0, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		want := filesAt(files, 0)
		if len(l0) != len(want) {
			t.Fatalf("L0 lists %d files, want %d", len(l0), len(want))
		}
		for i, info := range l0 {
			f := want[i]
			if info.Level != 0 || info.MinTXID != f.MinTXID || info.MaxTXID != f.MaxTXID || info.Size != int64(len(f.Data)) {
				t.Fatalf("L0[%d] = %+v, want %s of %d bytes", i, info, f, len(f.Data))
			}
			if !info.CreatedAt.Equal(f.Timestamp) {
				t.Fatalf("L0[%d] CreatedAt %v, want header timestamp %v", i, info.CreatedAt, f.Timestamp)
			}
		}

		seeked, err := storage.ListLevel(ctx, c, 0, 3, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(seeked) != 3 || seeked[0].MinTXID != 3 {
			t.Fatalf("seek 3 listed %v, want TXIDs 3, 4, 5", minTXIDs(seeked))
		}

		for _, f := range files {
			got := ReadRange(t, c, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
			if !bytes.Equal(got, f.Data) {
				t.Fatalf("read %s: %d bytes differ from the %d written", f, len(got), len(f.Data))
			}
			if err := ltx.NewDecoder(bytes.NewReader(got)).Verify(); err != nil {
				t.Fatalf("read %s: %v", f, err)
			}
		}
	})

	t.Run("RangedReads", func(t *testing.T) {
		c := newClient(t)
		checkRangedReads(t, c, c)
	})

	t.Run("ReadPastEndIsAnError", func(t *testing.T) {
		c := newClient(t)
		checkReadPastEnd(t, c, c)
	})

	t.Run("MissingFileIsErrNotExist", func(t *testing.T) {
		checkMissingFile(t, newClient(t))
	})

	t.Run("Delete", func(t *testing.T) {
		c := newClient(t)
		files := History(t, 3)
		for _, f := range files {
			MustWrite(t, c, f)
		}
		infos, err := storage.ListLevel(ctx, c, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		gone := []*ltx.FileInfo{infos[0], infos[1], {Level: 0, MinTXID: 99, MaxTXID: 99}}
		if err := c.DeleteLTXFiles(ctx, gone); err != nil {
			t.Fatalf("delete (one of them never existed): %v", err)
		}
		left, err := storage.ListLevel(ctx, c, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0].MinTXID != 3 {
			t.Fatalf("after deleting TXIDs 1 and 2, L0 lists %v", minTXIDs(left))
		}
		if _, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open deleted file: got %v, want os.ErrNotExist", err)
		}
		if err := c.DeleteAll(ctx); err != nil {
			t.Fatal(err)
		}
		for level := 0; level <= storage.SnapshotLevel; level++ {
			if infos, err := storage.ListLevel(ctx, c, level, 0, false); err != nil || len(infos) != 0 {
				t.Fatalf("after DeleteAll level %d lists %d files (err %v)", level, len(infos), err)
			}
		}
	})

	t.Run("HeaderMustMatchName", func(t *testing.T) {
		c := newClient(t)
		f := History(t, 1)[0]
		if _, err := c.WriteLTXFile(ctx, 0, 5, 5, bytes.NewReader(f.Data)); err == nil {
			t.Fatal("writing TXID 1's file under the name 5-5 succeeded")
		}
		if infos, _ := storage.ListLevel(ctx, c, 0, 0, false); len(infos) != 0 {
			t.Fatalf("a refused write left %d files listed", len(infos))
		}
	})

	t.Run("FailedWriteLeavesNothing", func(t *testing.T) {
		c := newClient(t)
		f := History(t, 1)[0]
		r := io.MultiReader(bytes.NewReader(f.Data[:len(f.Data)/2]), errReader{errors.New("source broke")})
		if _, err := c.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, r); err == nil {
			t.Fatal("write from a failing reader succeeded")
		}
		infos, err := storage.ListLevel(ctx, c, f.Level, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 0 {
			t.Fatalf("a failed write left %d files listed", len(infos))
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		c := newClient(t)
		f := History(t, 1)[0]
		MustWrite(t, c, f)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := storage.ListLevel(cctx, c, 0, 0, false); err == nil {
			t.Fatal("list with a cancelled context succeeded")
		}
		rc, err := c.OpenLTXFile(cctx, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if err == nil {
			t.Fatal("read with a cancelled context succeeded")
		}
		if _, err := c.WriteLTXFile(cctx, 0, 2, 2, bytes.NewReader(f.Data)); err == nil {
			t.Fatal("write with a cancelled context succeeded")
		}
	})

	t.Run("ListingNeverShowsAPartialFile", func(t *testing.T) {
		c := newClient(t)
		db := NewDB(4096)
		var files []File
		big := map[uint32][]byte{}
		for pgno := uint32(1); pgno <= 256; pgno++ {
			big[pgno] = randomPage(4096, int64(pgno))
		}
		files = append(files, File{Level: 0, MinTXID: 1, MaxTXID: 1, Data: db.Apply(t, 256, big)})
		for i := 2; i <= 8; i++ {
			files = append(files, File{Level: 0, MinTXID: ltx.TXID(i), MaxTXID: ltx.TXID(i), Data: db.Apply(t, 256, map[uint32][]byte{uint32(i): randomPage(4096, int64(1000+i))})})
		}

		var wg sync.WaitGroup
		wg.Add(1)
		errc := make(chan error, 1)
		go func() {
			defer wg.Done()
			for _, f := range files {
				if _, err := c.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data)); err != nil {
					errc <- err
					return
				}
			}
		}()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		checked := 0
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			infos, err := storage.ListLevel(ctx, c, 0, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, info := range infos {
				want := files[info.MinTXID-1].Data
				if info.Size != int64(len(want)) {
					t.Fatalf("listed %s with size %d, want %d: a partial file is visible", ltx.FormatFilename(info.MinTXID, info.MaxTXID), info.Size, len(want))
				}
				got := ReadRange(t, c, 0, info.MinTXID, info.MaxTXID, 0, 0)
				if !bytes.Equal(got, want) {
					t.Fatalf("read %s while writes went on: content differs", ltx.FormatFilename(info.MinTXID, info.MaxTXID))
				}
				checked++
			}
		}
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		if checked == 0 {
			t.Fatal("no listed file was checked")
		}
	})
	runCreateContract(t, newClient)
	runListAllContract(t, newClient)
	runObjectContract(t, newClient)
}

// checkRangedReads writes a file through w and reads ranges of it through r.
func checkRangedReads(t *testing.T, w, r storage.Client) {
	t.Helper()
	f := History(t, 1)[0]
	MustWrite(t, w, f)
	n := int64(len(f.Data))
	for _, rg := range []struct{ off, size int64 }{{0, 1}, {0, ltx.HeaderSize}, {10, 20}, {n - ltx.TrailerSize, ltx.TrailerSize}, {n - 1, 1}, {7, 0}, {0, n}} {
		got := ReadRange(t, r, f.Level, f.MinTXID, f.MaxTXID, rg.off, rg.size)
		want := f.Data[rg.off:]
		if rg.size > 0 {
			want = f.Data[rg.off : rg.off+rg.size]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read [%d,+%d): got %d bytes, want %d", rg.off, rg.size, len(got), len(want))
		}
	}
}

// checkReadPastEnd writes a file through w and reads past its end through
// r: a range that starts past the end is an error, one that runs past it
// is io.ErrUnexpectedEOF.
func checkReadPastEnd(t *testing.T, w, r storage.Client) {
	t.Helper()
	ctx := context.Background()
	f := History(t, 1)[0]
	MustWrite(t, w, f)
	n := int64(len(f.Data))

	rc, err := r.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, n+10, 5)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if err == nil {
		t.Fatalf("reading at %d of a %d-byte file succeeded", n+10, n)
	}

	rc, err = r.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, n-4, 10)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a range running 6 bytes past the end: got %v, want io.ErrUnexpectedEOF", err)
	}
}

// checkMissingFile opens a file that does not exist through r.
func checkMissingFile(t *testing.T, r storage.Client) {
	t.Helper()
	_, err := r.OpenLTXFile(context.Background(), 0, 7, 7, 0, 0)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open missing file: got %v, want os.ErrNotExist", err)
	}
	if want := ltx.FormatFilename(7, 7); err != nil && !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

// File is an LTX file of a test history (see History).
type File struct {
	Level            int
	MinTXID, MaxTXID ltx.TXID
	Timestamp        time.Time
	Data             []byte
}

func (f File) String() string { return storage.FileName(f.Level, f.MinTXID, f.MaxTXID) }

// history builds n L0 files, an L1 compaction of them and an L9 snapshot.
func History(t testing.TB, n int) []File {
	t.Helper()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	db := NewDB(4096)
	db.Now = func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock }
	var files []File
	for i := 1; i <= n; i++ {
		data := db.Apply(t, uint32(2+i), map[uint32][]byte{1: FillPage(4096, 1, i), uint32(1 + i): FillPage(4096, uint32(1+i), i), uint32(2 + i): FillPage(4096, uint32(2+i), i)})
		files = append(files, File{Level: 0, MinTXID: ltx.TXID(i), MaxTXID: ltx.TXID(i), Timestamp: time.UnixMilli(Header(t, data).Timestamp).UTC(), Data: data})
	}
	if n == 1 {
		return files
	}
	var l0 [][]byte
	for _, f := range files {
		l0 = append(l0, f.Data)
	}
	l1 := Compact(t, l0...)
	files = append(files, File{Level: 1, MinTXID: 1, MaxTXID: ltx.TXID(n), Timestamp: time.UnixMilli(Header(t, l1).Timestamp).UTC(), Data: l1})
	snap := db.Snapshot(t)
	files = append(files, File{Level: storage.SnapshotLevel, MinTXID: 1, MaxTXID: ltx.TXID(n), Timestamp: time.UnixMilli(Header(t, snap).Timestamp).UTC(), Data: snap})
	return files
}

func filesAt(files []File, level int) []File {
	var out []File
	for _, f := range files {
		if f.Level == level {
			out = append(out, f)
		}
	}
	return out
}

// MustWrite writes f into c.
func MustWrite(t testing.TB, c storage.Client, f File) {
	t.Helper()
	if _, err := c.WriteLTXFile(context.Background(), f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data)); err != nil {
		t.Fatalf("write %s: %v", f, err)
	}
}

// ReadRange reads size bytes at off of a file of c (0: to the end).
func ReadRange(t testing.TB, c storage.Client, level int, min, max ltx.TXID, off, size int64) []byte {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), level, min, max, off, size)
	if err != nil {
		t.Fatalf("open %s [%d,+%d): %v", storage.FileName(level, min, max), off, size, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s [%d,+%d): %v", storage.FileName(level, min, max), off, size, err)
	}
	return b
}

func minTXIDs(infos []*ltx.FileInfo) []string {
	var out []string
	for _, info := range infos {
		out = append(out, fmt.Sprint(uint64(info.MinTXID)))
	}
	return out
}

func randomPage(size int, seed int64) []byte {
	b := make([]byte, size)
	x := uint64(seed)*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
