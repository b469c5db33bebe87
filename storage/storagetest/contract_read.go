package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// ReadPair is one replica seen through two clients: Write, a full client
// that puts files and objects in place, and Read, the read-only client
// under test (an HTTP client of the directory a web server serves).
type ReadPair struct {
	Write, Read storage.Client

	// Backdate, if set, sets the modification time of an object written
	// through Write, so that it looks written long ago: validators built
	// from mtimes may be trusted for conditional reads only once they are
	// a little old. Without it, the contract waits until a conditional
	// read is answered "not modified".
	Backdate func(t *testing.T, name string, mtime time.Time)
}

// settleTimeout bounds the wait for a conditional read to be answered
// "not modified" when a ReadPair has no Backdate.
const settleTimeout = 10 * time.Second

// RunReadContract checks the behaviour every read-only client must have:
// what Write stored, Read reads back exactly (whole, in ranges, in
// parallel, as objects with conditional reads); a missing file or object
// is os.ErrNotExist; writes, deletes and listings are refused with an
// error matching errors.ErrUnsupported, and change nothing. newPair
// returns a pair on an empty replica of its own each time it is called.
func RunReadContract(t *testing.T, newPair func(t *testing.T) ReadPair) {
	ctx := context.Background()

	t.Run("ReadWholeFiles", func(t *testing.T) {
		p := newPair(t)
		for _, f := range History(t, 5) {
			MustWrite(t, p.Write, f)
			got := ReadRange(t, p.Read, f.Level, f.MinTXID, f.MaxTXID, 0, 0)
			if !bytes.Equal(got, f.Data) {
				t.Fatalf("read %s: %d bytes differ from the %d written", f, len(got), len(f.Data))
			}
			if err := ltx.NewDecoder(bytes.NewReader(got)).Verify(); err != nil {
				t.Fatalf("read %s: %v", f, err)
			}
		}
	})

	t.Run("RangedReads", func(t *testing.T) {
		p := newPair(t)
		checkRangedReads(t, p.Write, p.Read)
	})

	t.Run("ConcurrentRangedReads", func(t *testing.T) {
		p := newPair(t)
		pages := map[uint32][]byte{}
		for pgno := uint32(1); pgno <= 16; pgno++ {
			pages[pgno] = randomPage(4096, int64(pgno))
		}
		f := File{Level: 0, MinTXID: 1, MaxTXID: 1, Data: NewDB(4096).Apply(t, 16, pages)}
		MustWrite(t, p.Write, f)
		const readers = 64
		errs := make([]error, readers)
		var wg sync.WaitGroup
		for i := range readers {
			wg.Go(func() {
				off := int64(i * 997 % (len(f.Data) - 64))
				got, err := tryRange(ctx, p.Read, f, off, 64)
				if err == nil && !bytes.Equal(got, f.Data[off:off+64]) {
					err = fmt.Errorf("bytes [%d,+64) differ", off)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ReadPastEndIsAnError", func(t *testing.T) {
		p := newPair(t)
		checkReadPastEnd(t, p.Write, p.Read)
	})

	t.Run("MissingFileIsErrNotExist", func(t *testing.T) {
		checkMissingFile(t, newPair(t).Read)
	})

	t.Run("ObjectRoundTrip", func(t *testing.T) {
		p := newPair(t)
		for _, o := range []struct {
			name string
			data []byte
		}{
			{"manifest", []byte(`{"txid":"0000000000000064"}`)},
			{"hints/L9-0000000000000001-0000000000000064-0123456789abcdef", bytes.Repeat([]byte{0xa5}, 70<<10)},
			{"empty", nil},
		} {
			MustWriteObject(t, p.Write, o.name, o.data, storage.WriteOptions{})
			got, r := MustReadObject(t, p.Read, o.name, "")
			if !bytes.Equal(got, o.data) {
				t.Fatalf("read %s: %d bytes differ from the %d written", o.name, len(got), len(o.data))
			}
			if r.Name != o.name || r.Size != int64(len(o.data)) || r.ETag == "" {
				t.Fatalf("read %s: info %+v, want its name, size %d and an ETag", o.name, r, len(o.data))
			}
		}
	})

	t.Run("MissingObjectIsErrNotExist", func(t *testing.T) {
		p := newPair(t)
		checkMissingObjects(t, p.Write, p.Read)
	})

	t.Run("ConditionalRead", func(t *testing.T) {
		p := newPair(t)
		long := time.Now().Add(-time.Hour).Truncate(time.Second)
		write := func(data string, mtime time.Time) {
			MustWriteObject(t, p.Write, "manifest", []byte(data), storage.WriteOptions{})
			if p.Backdate != nil {
				p.Backdate(t, "manifest", mtime)
			}
		}
		write("version one", long)
		etag := readUntilNotModified(t, p.Read, "manifest", "version one")

		// Same length, other bytes, a new mtime: never "not modified".
		write("version two", long.Add(10*time.Second))
		got, r := MustReadObject(t, p.Read, "manifest", etag)
		if string(got) != "version two" {
			t.Fatalf("read with version one's ETag after a rewrite: %q, want %q", got, "version two")
		}
		if r.ETag == etag {
			t.Fatalf("rewritten with other content, the ETag stayed %s", etag)
		}
		readUntilNotModified(t, p.Read, "manifest", "version two")
		if got, _ := MustReadObject(t, p.Read, "manifest", `"no-such-etag"`); string(got) != "version two" {
			t.Fatalf("read with an unknown ETag: %q", got)
		}
		if _, _, err := p.Read.ReadObject(ctx, "absent", storage.ReadOptions{IfNoneMatch: etag}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("conditional read of a missing object: got %v, want os.ErrNotExist", err)
		}
	})

	t.Run("RefusesWrites", func(t *testing.T) {
		p := newPair(t)
		f := History(t, 1)[0]
		MustWrite(t, p.Write, f)
		MustWriteObject(t, p.Write, "manifest", []byte("kept"), storage.WriteOptions{})
		info := &ltx.FileInfo{Level: f.Level, MinTXID: f.MinTXID, MaxTXID: f.MaxTXID}
		for what, err := range map[string]error{
			"WriteLTXFile":   second(p.Read.WriteLTXFile(ctx, 0, 2, 2, bytes.NewReader(f.Data))),
			"DeleteLTXFiles": p.Read.DeleteLTXFiles(ctx, []*ltx.FileInfo{info}),
			"DeleteAll":      p.Read.DeleteAll(ctx),
			"WriteObject":    second(p.Read.WriteObject(ctx, "manifest", strings.NewReader("replaced"), storage.WriteOptions{})),
			"DeleteObjects":  p.Read.DeleteObjects(ctx, []string{"manifest"}),
		} {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("%s: got %v, want an error matching errors.ErrUnsupported", what, err)
			}
		}
		if got := ReadRange(t, p.Write, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !bytes.Equal(got, f.Data) {
			t.Fatalf("after refused writes and deletes, %s changed", f)
		}
		if got, _ := MustReadObject(t, p.Write, "manifest", ""); string(got) != "kept" {
			t.Fatalf("after refused writes and deletes, the manifest holds %q", got)
		}
	})

	t.Run("RefusesListing", func(t *testing.T) {
		p := newPair(t)
		MustWrite(t, p.Write, History(t, 1)[0])
		if _, err := p.Read.LTXFiles(ctx, 0, 0, false); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("LTXFiles: got %v, want an error matching errors.ErrUnsupported", err)
		}
		if _, err := p.Read.ListObjects(ctx, ""); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("ListObjects: got %v, want an error matching errors.ErrUnsupported", err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		p := newPair(t)
		f := History(t, 1)[0]
		MustWrite(t, p.Write, f)
		MustWriteObject(t, p.Write, "manifest", []byte("m"), storage.WriteOptions{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := tryRange(cctx, p.Read, f, 0, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("read a file with a cancelled context: got %v, want context.Canceled", err)
		}
		if _, _, err := storage.ReadAllObject(cctx, p.Read, "manifest", storage.ReadOptions{}, 1<<20); !errors.Is(err, context.Canceled) {
			t.Errorf("read an object with a cancelled context: got %v, want context.Canceled", err)
		}
	})
}

// readUntilNotModified reads an object, which must hold want, with the
// ETag of each read in the next, until one is answered "not modified";
// it returns that ETag.
func readUntilNotModified(t *testing.T, c storage.Client, name, want string) string {
	t.Helper()
	got, r := MustReadObject(t, c, name, "")
	if string(got) != want {
		t.Fatalf("read %s: %q, want %q", name, got, want)
	}
	deadline := time.Now().Add(settleTimeout)
	for etag := r.ETag; ; {
		b, info, err := storage.ReadAllObject(context.Background(), c, name, storage.ReadOptions{IfNoneMatch: etag}, 1<<20)
		switch {
		case errors.Is(err, storage.ErrNotModified):
			if info.ETag != etag || info.Name != name || !strings.Contains(err.Error(), name) {
				t.Fatalf("not modified: info %+v, error %q; want the ETag %s and the name", info, err, etag)
			}
			return etag
		case err != nil:
			t.Fatalf("read %s with ETag %s: %v", name, etag, err)
		case string(b) != want:
			t.Fatalf("read %s with ETag %s: %q, want %q", name, etag, b, want)
		case time.Now().After(deadline):
			t.Fatalf("read %s with its own ETag for %v: never answered not modified (last ETag %s)", name, settleTimeout, etag)
		}
		etag = info.ETag
		time.Sleep(50 * time.Millisecond)
	}
}

// tryRange reads [off, off+size) of a file (to its end when size is 0).
func tryRange(ctx context.Context, c storage.Client, f File, off, size int64) ([]byte, error) {
	rc, err := c.OpenLTXFile(ctx, f.Level, f.MinTXID, f.MaxTXID, off, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func second[T any](_ T, err error) error { return err }
