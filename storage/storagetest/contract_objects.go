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

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// runObjectContract checks the object API (see storage.ObjectDir).
func runObjectContract(t *testing.T, newClient func(t *testing.T) storage.Client) {
	ctx := context.Background()

	t.Run("ObjectRoundTrip", func(t *testing.T) {
		c := newClient(t)
		for _, o := range []struct {
			name string
			data []byte
		}{
			{"manifest", []byte(`{"txid":"0000000000000064"}`)},
			{"hints/L9-0000000000000001-0000000000000064-0123456789abcdef", bytes.Repeat([]byte{0xa5}, 70<<10)},
			{"empty", nil},
		} {
			w := MustWriteObject(t, c, o.name, o.data, storage.WriteOptions{})
			if w.Name != o.name || w.Size != int64(len(o.data)) || w.ETag == "" {
				t.Fatalf("write %s: info %+v, want its name, size %d and an ETag", o.name, w, len(o.data))
			}
			got, r := MustReadObject(t, c, o.name, "")
			if !bytes.Equal(got, o.data) {
				t.Fatalf("read %s: %d bytes differ from the %d written", o.name, len(got), len(o.data))
			}
			if r.Name != o.name || r.Size != w.Size || r.ETag != w.ETag {
				t.Fatalf("read %s: info %+v, the write gave %+v", o.name, r, w)
			}
		}
	})

	t.Run("MissingObjectIsErrNotExist", func(t *testing.T) {
		c := newClient(t)
		checkMissingObjects(t, c, c)
	})

	t.Run("ConditionalRead", func(t *testing.T) {
		c := newClient(t)
		w1 := MustWriteObject(t, c, "manifest", []byte("version one"), storage.WriteOptions{})
		rc, info, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{IfNoneMatch: w1.ETag})
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, storage.ErrNotModified) || rc != nil {
			t.Fatalf("read with the current ETag: got a body (%v) and %v, want ErrNotModified", rc != nil, err)
		}
		if info.ETag != w1.ETag || info.Name != "manifest" || !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("not modified: info %+v, error %q; want the ETag %s and the name", info, err, w1.ETag)
		}
		// Same length, other bytes: the ETag must change all the same.
		w2 := MustWriteObject(t, c, "manifest", []byte("version two"), storage.WriteOptions{})
		if w2.ETag == w1.ETag {
			t.Fatalf("rewritten with other content of the same size, the ETag stayed %s", w1.ETag)
		}
		got, r := MustReadObject(t, c, "manifest", w1.ETag)
		if string(got) != "version two" || r.ETag != w2.ETag {
			t.Fatalf("read with the old ETag after a rewrite: %q, ETag %s; want %q, %s", got, r.ETag, "version two", w2.ETag)
		}
		// Rewrites whose files come and go may reuse what a backend
		// builds its ETags from (an inode): no ETag may come back.
		seen := map[string]int{w1.ETag: 1, w2.ETag: 2}
		for v := 3; v <= 8; v++ {
			w := MustWriteObject(t, c, "manifest", fmt.Appendf(nil, "version %03d", v), storage.WriteOptions{})
			if seen[w.ETag] != 0 {
				t.Fatalf("version %d has the ETag %s of version %d", v, w.ETag, seen[w.ETag])
			}
			seen[w.ETag] = v
			if got, _ := MustReadObject(t, c, "manifest", w1.ETag); string(got) != fmt.Sprintf("version %03d", v) {
				t.Fatalf("read with version 1's ETag: %q, want version %d", got, v)
			}
		}
		if got, _ := MustReadObject(t, c, "manifest", `"no-such-etag"`); string(got) != "version 008" {
			t.Fatalf("read with an unknown ETag: %q", got)
		}
		if _, _, err := c.ReadObject(ctx, "absent", storage.ReadOptions{IfNoneMatch: w1.ETag}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("conditional read of a missing object: got %v, want os.ErrNotExist", err)
		}
	})

	t.Run("CreateOnly", func(t *testing.T) {
		c := newClient(t)
		create := storage.WriteOptions{IfNoneMatch: true}
		w := MustWriteObject(t, c, "manifest", []byte("first"), create)
		_, err := c.WriteObject(ctx, "manifest", strings.NewReader("second"), create)
		if !errors.Is(err, storage.ErrPreconditionFailed) || !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("create over an existing object: got %v, want ErrPreconditionFailed naming it", err)
		}
		if got, r := MustReadObject(t, c, "manifest", ""); string(got) != "first" || r.ETag != w.ETag {
			t.Fatalf("a refused create left %q (ETag %s), want %q (%s)", got, r.ETag, "first", w.ETag)
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		c := newClient(t)
		w1 := MustWriteObject(t, c, "manifest", []byte("one"), storage.WriteOptions{})
		w2 := MustWriteObject(t, c, "manifest", []byte("two"), storage.WriteOptions{IfMatch: w1.ETag})
		if w2.ETag == w1.ETag {
			t.Fatalf("a swap kept the ETag %s", w1.ETag)
		}
		_, err := c.WriteObject(ctx, "manifest", strings.NewReader("three"), storage.WriteOptions{IfMatch: w1.ETag})
		if !errors.Is(err, storage.ErrPreconditionFailed) || !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("swap from a stale ETag: got %v, want ErrPreconditionFailed naming the object", err)
		}
		if got, r := MustReadObject(t, c, "manifest", ""); string(got) != "two" || r.ETag != w2.ETag {
			t.Fatalf("a refused swap left %q (ETag %s), want %q (%s)", got, r.ETag, "two", w2.ETag)
		}
		if _, err := c.WriteObject(ctx, "other", strings.NewReader("x"), storage.WriteOptions{IfMatch: w2.ETag}); !errors.Is(err, storage.ErrPreconditionFailed) {
			t.Fatalf("swap of a missing object: got %v, want ErrPreconditionFailed", err)
		}
		if _, _, err := c.ReadObject(ctx, "other", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused swap of a missing object created it (read: %v)", err)
		}
	})

	t.Run("ConcurrentConditionalWrites", func(t *testing.T) {
		c := newClient(t)
		const writers = 4
		// Every writer writes bytes of its own, in each race: S3's ETag is
		// the content's MD5, so a rewrite with the bytes already there
		// keeps the ETag, and a second swap from it would rightly succeed.
		race := func(name string, opts storage.WriteOptions) {
			t.Helper()
			// Each race writes content of its own: a write of the content
			// the object already holds keeps its ETag (S3's is the MD5 of
			// the content), so that a second swap from the same ETag
			// rightly succeeds too (MinIO showed it: a writer of the
			// current content and another both won the swap).
			content := func(i int) string { return fmt.Sprintf("writer %d %s", i, opts) }
			infos := make([]storage.ObjectInfo, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					infos[i], errs[i] = c.WriteObject(ctx, name, strings.NewReader(content(i)), opts)
				})
			}
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won >= 0:
					t.Fatalf("%s %s: writers %d and %d both won", name, opts, won, i)
				case err == nil:
					won = i
				case !errors.Is(err, storage.ErrPreconditionFailed):
					t.Fatalf("%s %s: writer %d: %v", name, opts, i, err)
				}
			}
			if won < 0 {
				t.Fatalf("%s %s: no writer won", name, opts)
			}
			got, r := MustReadObject(t, c, name, "")
			if string(got) != content(won) || r.ETag != infos[won].ETag {
				t.Fatalf("%s %s: writer %d won, the object holds %q with ETag %s (the winner's: %s)", name, opts, won, got, r.ETag, infos[won].ETag)
			}
		}
		race("manifest", storage.WriteOptions{IfNoneMatch: true})
		_, r := MustReadObject(t, c, "manifest", "")
		race("manifest", storage.WriteOptions{IfMatch: r.ETag})
	})

	t.Run("ListObjects", func(t *testing.T) {
		c := newClient(t)
		MustWrite(t, c, History(t, 1)[0])
		written := map[string]storage.ObjectInfo{}
		for _, name := range []string{"manifest", "hints/b", "hints/a", "hints-old", "hints/deeper/c"} {
			written[name] = MustWriteObject(t, c, name, []byte("content of "+name), storage.WriteOptions{})
		}
		check := func(dir string, want ...string) {
			t.Helper()
			infos, err := c.ListObjects(ctx, dir)
			if err != nil {
				t.Fatalf("list %q: %v", dir, err)
			}
			var got []string
			for _, info := range infos {
				got = append(got, info.Name)
				w := written[info.Name]
				if info.Size != w.Size || (info.ETag != "" && info.ETag != w.ETag) {
					t.Fatalf("list %q: %+v, written as %+v", dir, info, w)
				}
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("list %q: %q, want %q", dir, got, want)
			}
		}
		check("", "hints-old", "hints/a", "hints/b", "hints/deeper/c", "manifest")
		check("hints", "hints/a", "hints/b", "hints/deeper/c")
		check("hints/deeper", "hints/deeper/c")
		check("manifest")
		check("nothing")
	})

	t.Run("DeleteObjects", func(t *testing.T) {
		c := newClient(t)
		for _, name := range []string{"manifest", "hints/a", "hints/b"} {
			MustWriteObject(t, c, name, []byte(name), storage.WriteOptions{})
		}
		if err := c.DeleteObjects(ctx, []string{"hints/a", "missing", "hints/a", "hints/c/d"}); err != nil {
			t.Fatalf("delete (some never existed): %v", err)
		}
		if err := c.DeleteObjects(ctx, []string{"hints/a"}); err != nil {
			t.Fatalf("delete again: %v", err)
		}
		if err := c.DeleteObjects(ctx, nil); err != nil {
			t.Fatalf("delete nothing: %v", err)
		}
		if _, _, err := c.ReadObject(ctx, "hints/a", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read a deleted object: got %v, want os.ErrNotExist", err)
		}
		if infos, err := c.ListObjects(ctx, ""); err != nil || len(infos) != 2 || infos[0].Name != "hints/b" || infos[1].Name != "manifest" {
			t.Fatalf("after deleting hints/a: listed %+v (%v)", infos, err)
		}
		// A deleted object can be created again, also create-only.
		MustWriteObject(t, c, "hints/a", []byte("again"), storage.WriteOptions{IfNoneMatch: true})
	})

	t.Run("InvalidObjectNamesRefused", func(t *testing.T) {
		c := newClient(t)
		for _, name := range []string{"", "/manifest", "manifest/", "a//b", ".", "..", "../manifest", "hints/../../x", ".hidden", "hints/.a", "a b", `a\b`, "ü", strings.Repeat("a", 513)} {
			if _, err := c.WriteObject(ctx, name, strings.NewReader("x"), storage.WriteOptions{}); err == nil || errors.Is(err, storage.ErrPreconditionFailed) {
				t.Errorf("write %q: got %v, want a refusal", name, err)
			}
			if _, _, err := c.ReadObject(ctx, name, storage.ReadOptions{}); err == nil || errors.Is(err, os.ErrNotExist) {
				t.Errorf("read %q: got %v, want a refusal", name, err)
			}
			if err := c.DeleteObjects(ctx, []string{"manifest", name}); err == nil {
				t.Errorf("delete %q: no error", name)
			}
			if name != "" {
				if _, err := c.ListObjects(ctx, name); err == nil {
					t.Errorf("list %q: no error", name)
				}
			}
		}
		if infos, err := c.ListObjects(ctx, ""); err != nil || len(infos) != 0 {
			t.Fatalf("after refused writes: listed %+v (%v)", infos, err)
		}
	})

	t.Run("ObjectsAndLTXFilesApart", func(t *testing.T) {
		c := newClient(t)
		f := History(t, 1)[0]
		MustWrite(t, c, f)
		// Objects named as the level folders and files of either layout.
		name := ltx.FormatFilename(f.MinTXID, f.MaxTXID)
		for _, o := range []string{"0/" + name, "0000/" + name, name} {
			MustWriteObject(t, c, o, f.Data, storage.WriteOptions{})
		}
		for _, level := range []int{0, storage.SnapshotLevel, storage.LegacyHintLevel} {
			infos, err := storage.ListLevel(ctx, c, level, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(filesAt([]File{f}, level)); len(infos) != want {
				t.Fatalf("L%d lists %d files, want %d: objects listed as LTX files", level, len(infos), want)
			}
		}
		infos, err := c.ListObjects(ctx, "")
		if err != nil || len(infos) != 3 {
			t.Fatalf("listed objects %+v (%v), want the 3 written: LTX files listed as objects?", infos, err)
		}
		if err := c.DeleteObjects(ctx, []string{"0/" + name, "0000/" + name, name}); err != nil {
			t.Fatal(err)
		}
		if got := ReadRange(t, c, f.Level, f.MinTXID, f.MaxTXID, 0, 0); !bytes.Equal(got, f.Data) {
			t.Fatal("deleting objects changed an LTX file")
		}
	})

	t.Run("FailedObjectWriteLeavesNothing", func(t *testing.T) {
		c := newClient(t)
		broken := func() io.Reader {
			return io.MultiReader(strings.NewReader("half of it"), errReader{errors.New("source broke")})
		}
		if _, err := c.WriteObject(ctx, "manifest", broken(), storage.WriteOptions{}); err == nil {
			t.Fatal("write from a failing reader succeeded")
		}
		if _, _, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("after a failed write: read got %v, want os.ErrNotExist", err)
		}
		w := MustWriteObject(t, c, "manifest", []byte("whole"), storage.WriteOptions{})
		for _, opts := range []storage.WriteOptions{{}, {IfMatch: w.ETag}} {
			if _, err := c.WriteObject(ctx, "manifest", broken(), opts); err == nil {
				t.Fatalf("rewrite %s from a failing reader succeeded", opts)
			}
		}
		if got, r := MustReadObject(t, c, "manifest", ""); string(got) != "whole" || r.ETag != w.ETag {
			t.Fatalf("after failed rewrites: %q, ETag %s", got, r.ETag)
		}
		if infos, err := c.ListObjects(ctx, ""); err != nil || len(infos) != 1 {
			t.Fatalf("after failed writes: listed %+v (%v)", infos, err)
		}
	})

	t.Run("ObjectsWithCancelledContext", func(t *testing.T) {
		c := newClient(t)
		MustWriteObject(t, c, "manifest", []byte("x"), storage.WriteOptions{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := storage.ReadAllObject(cctx, c, "manifest", storage.ReadOptions{}, 1<<20); err == nil {
			t.Error("read with a cancelled context succeeded")
		}
		if _, err := c.WriteObject(cctx, "other", strings.NewReader("y"), storage.WriteOptions{}); err == nil {
			t.Error("write with a cancelled context succeeded")
		}
		if _, err := c.ListObjects(cctx, ""); err == nil {
			t.Error("list with a cancelled context succeeded")
		}
		if err := c.DeleteObjects(cctx, []string{"manifest"}); err == nil {
			t.Error("delete with a cancelled context succeeded")
		}
	})

	t.Run("ReadNeverSeesAPartialObject", func(t *testing.T) {
		c := newClient(t)
		const size, versions = 192 << 10, 8
		MustWriteObject(t, c, "manifest", bytes.Repeat([]byte{0}, size), storage.WriteOptions{})
		done := make(chan error, 1)
		go func() {
			for v := 1; v < versions; v++ {
				if _, err := c.WriteObject(ctx, "manifest", bytes.NewReader(bytes.Repeat([]byte{byte(v)}, size)), storage.WriteOptions{}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		reads := 0
		for finished := false; !finished; reads++ {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				finished = true
			default:
			}
			got, _ := MustReadObject(t, c, "manifest", "")
			if len(got) != size || bytes.Count(got, got[:1]) != size {
				t.Fatalf("read %d bytes, not one whole version: a partial object is visible", len(got))
			}
		}
		if got, _ := MustReadObject(t, c, "manifest", ""); got[0] != versions-1 {
			t.Fatalf("the last version read is %d, want %d", got[0], versions-1)
		}
	})

	t.Run("DeleteAllRemovesObjects", func(t *testing.T) {
		c := newClient(t)
		MustWrite(t, c, History(t, 1)[0])
		for _, name := range []string{"manifest", "hints/a"} {
			MustWriteObject(t, c, name, []byte(name), storage.WriteOptions{IfNoneMatch: true})
		}
		if err := c.DeleteAll(ctx); err != nil {
			t.Fatal(err)
		}
		if infos, err := c.ListObjects(ctx, ""); err != nil || len(infos) != 0 {
			t.Fatalf("after DeleteAll: listed %+v (%v)", infos, err)
		}
		if _, _, err := c.ReadObject(ctx, "manifest", storage.ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("after DeleteAll: read got %v, want os.ErrNotExist", err)
		}
		// The replica is usable again: a create-only write succeeds.
		MustWriteObject(t, c, "manifest", []byte("new"), storage.WriteOptions{IfNoneMatch: true})
	})
}

// checkMissingObjects writes one object through w and reads others, and a
// folder, through r.
func checkMissingObjects(t *testing.T, w, r storage.Client) {
	t.Helper()
	MustWriteObject(t, w, "hints/a", []byte("a"), storage.WriteOptions{})
	for _, name := range []string{"manifest", "hints/b", "hints", "hints/a/b"} {
		rc, _, err := r.ReadObject(context.Background(), name, storage.ReadOptions{})
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read missing object %s: got %v, want os.ErrNotExist", name, err)
		}
		if !strings.Contains(err.Error(), name) {
			t.Fatalf("error %q does not name %s", err, name)
		}
	}
}

// MustWriteObject writes an object into c.
func MustWriteObject(t testing.TB, c storage.Client, name string, data []byte, opts storage.WriteOptions) storage.ObjectInfo {
	t.Helper()
	info, err := c.WriteObject(context.Background(), name, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("write object %s %s: %v", name, opts, err)
	}
	return info
}

// MustReadObject reads an object of c whole, which must have a body (with
// IfNoneMatch, if not "").
func MustReadObject(t testing.TB, c storage.Client, name, ifNoneMatch string) ([]byte, storage.ObjectInfo) {
	t.Helper()
	b, info, err := storage.ReadAllObject(context.Background(), c, name, storage.ReadOptions{IfNoneMatch: ifNoneMatch}, 1<<30)
	if err != nil {
		t.Fatalf("read object %s: %v", name, err)
	}
	return b, info
}
