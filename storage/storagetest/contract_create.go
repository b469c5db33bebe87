package storagetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// runCreateContract checks that WriteLTXFile creates and never replaces:
// the fence that keeps a writer paused past its lease from writing over
// its successor's files.
func runCreateContract(t *testing.T, newClient func(t *testing.T) storage.Client) {
	ctx := context.Background()

	t.Run("WriteIsCreateOnly", func(t *testing.T) {
		c := newClient(t)
		files := History(t, 3)
		others := otherHistory(t, 3)
		for i, f := range files {
			MustWrite(t, c, f)
			// The same bytes again (a retry of a write that landed) are
			// no error, and say the same.
			info, err := c.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data))
			if err != nil {
				t.Fatalf("write %s again with the same bytes: %v, want success", f, err)
			}
			if info.Size != int64(len(f.Data)) || !info.CreatedAt.Equal(f.Timestamp) {
				t.Fatalf("write %s again: info %+v", f, info)
			}
			// Other bytes under the name are refused, naming the file,
			// and change nothing.
			o := others[i]
			if o.String() != f.String() || bytes.Equal(o.Data, f.Data) {
				t.Fatalf("test history: %s is not another content for %s", o, f)
			}
			_, err = c.WriteLTXFile(ctx, o.Level, o.MinTXID, o.MaxTXID, bytes.NewReader(o.Data))
			if !errors.Is(err, storage.ErrFileExists) {
				t.Fatalf("write other bytes as %s: %v, want storage.ErrFileExists", f, err)
			}
			if !strings.Contains(err.Error(), ltx.FormatFilename(f.MinTXID, f.MaxTXID)) {
				t.Errorf("error %q does not name %s", err, f)
			}
			if got := ReadRange(t, c, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !bytes.Equal(got, f.Data) {
				t.Fatalf("%s was replaced by a refused write", f)
			}
		}
		for _, level := range []int{0, 1, storage.SnapshotLevel} {
			infos, err := storage.ListLevel(ctx, c, level, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			want := filesAt(files, level)
			if len(infos) != len(want) {
				t.Fatalf("L%d lists %d files, want %d", level, len(infos), len(want))
			}
			for i, info := range infos {
				if info.Size != int64(len(want[i].Data)) {
					t.Fatalf("L%d lists %s of %d bytes, want the first write's %d", level, want[i], info.Size, len(want[i].Data))
				}
			}
		}
	})

	t.Run("ConcurrentCreatesOneWins", func(t *testing.T) {
		c := newClient(t)
		// Two writers of TXID 1 with different content, and a third
		// sending the first one's bytes again: the first two race, and
		// the same bytes never fail.
		a, b := History(t, 1)[0], otherHistory(t, 1)[0]
		writes := []File{a, b, a, b, a}
		errs := make([]error, len(writes))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, f := range writes {
			wg.Go(func() {
				<-start
				_, errs[i] = c.WriteLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, bytes.NewReader(f.Data))
			})
		}
		close(start)
		wg.Wait()
		got := ReadRange(t, c, 0, 1, 1, 0, 0)
		winner := a
		if bytes.Equal(got, b.Data) {
			winner = b
		} else if !bytes.Equal(got, a.Data) {
			t.Fatal("the file holds neither writer's bytes")
		}
		for i, f := range writes {
			wantOK := bytes.Equal(f.Data, winner.Data)
			switch {
			case wantOK && errs[i] != nil:
				t.Errorf("write %d, the stored bytes: %v", i, errs[i])
			case !wantOK && !errors.Is(errs[i], storage.ErrFileExists):
				t.Errorf("write %d, other bytes than the stored: %v, want storage.ErrFileExists", i, errs[i])
			}
		}
	})
}

// otherHistory is History's files with other content under the same
// names: another database's writer.
func otherHistory(t testing.TB, n int) []File {
	t.Helper()
	db := NewDB(4096)
	var files []File
	for i := 1; i <= n; i++ {
		data := db.Apply(t, uint32(2+i), map[uint32][]byte{1: FillPage(4096, 1, 1000+i), uint32(1 + i): FillPage(4096, uint32(1+i), 1000+i), uint32(2 + i): FillPage(4096, uint32(2+i), 1000+i)})
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
	return append(files, File{Level: storage.SnapshotLevel, MinTXID: 1, MaxTXID: ltx.TXID(n), Timestamp: time.UnixMilli(Header(t, snap).Timestamp).UTC(), Data: snap})
}
