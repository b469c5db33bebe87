//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// The object folder, a folder in it or an object that is a symbolic link
// out of the root is refused: nothing outside is read, listed, replaced or
// deleted through it.
func TestObjectSymlinksOutOfTheRootAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		link func(t *testing.T, root, outside string) // outside holds "manifest" and "hints/a"
	}{
		{"object folder", func(t *testing.T, root, outside string) {
			mustSymlink(t, outside, storage.FileObjectDir(root))
		}},
		{"folder of objects", func(t *testing.T, root, outside string) {
			mustSymlink(t, filepath.Join(outside, "hints"), filepath.Join(storage.FileObjectDir(root), "hints"))
		}},
		{"object", func(t *testing.T, root, outside string) {
			mustSymlink(t, filepath.Join(outside, "manifest"), filepath.Join(storage.FileObjectDir(root), "manifest"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.MkdirAll(filepath.Join(outside, "hints"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"manifest", "hints/a"} {
				if err := os.WriteFile(filepath.Join(outside, name), []byte("secret"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			root := filepath.Join(base, "replica")
			tt.link(t, root, outside)
			c := file.New(root)

			for _, name := range []string{"manifest", "hints/a"} {
				if b, _, err := storage.ReadAllObject(ctx, c, name, storage.ReadOptions{}, 100); err == nil {
					t.Errorf("read %s through the link: %q", name, b)
				}
			}
			if infos, err := c.ListObjects(ctx, ""); err == nil && len(infos) > 0 {
				t.Errorf("listed %+v through the link", infos)
			}
			if infos, err := c.ListObjects(ctx, "hints"); err == nil && len(infos) > 0 {
				t.Errorf("listed %+v through the link", infos)
			}
			for _, opts := range []storage.WriteOptions{{}, {IfNoneMatch: true}, {IfMatch: `"x"`}} {
				c.WriteObject(ctx, "manifest", strings.NewReader("overwritten"), opts) // may fail; must not write outside
				c.WriteObject(ctx, "hints/a", strings.NewReader("overwritten"), opts)
			}
			if err := c.DeleteObjects(ctx, []string{"manifest", "hints/a"}); err != nil {
				t.Logf("delete: %v", err)
			}
			for _, name := range []string{"manifest", "hints/a"} {
				if got, err := os.ReadFile(filepath.Join(outside, name)); err != nil || string(got) != "secret" {
					t.Errorf("%s outside the root: %q, %v", name, got, err)
				}
			}
			assertOnly(t, outside, "hints", "manifest")
			assertOnly(t, filepath.Join(outside, "hints"), "a")
		})
	}
}

// Temp and lock files are hidden from listings; the temp files a writer
// killed mid-write left are removed when the next writer takes the lease.
func TestObjectTempAndLockFiles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.New(root)
	createThenSwap(t, c)
	// Neither a write whose source broke nor refused ones leave a temp file.
	broken := io.MultiReader(strings.NewReader("half"), iotest.ErrReader(errors.New("source broke")))
	if _, err := c.WriteObject(ctx, "manifest", broken, storage.WriteOptions{}); err == nil {
		t.Fatal("a write from a broken source succeeded")
	}
	for _, opts := range []storage.WriteOptions{{IfNoneMatch: true}, {IfMatch: `"stale"`}} {
		if _, err := c.WriteObject(ctx, "manifest", strings.NewReader("three"), opts); !errors.Is(err, storage.ErrPreconditionFailed) {
			t.Fatalf("write %s: %v, want ErrPreconditionFailed", opts, err)
		}
	}
	dir := storage.FileObjectDir(root)
	assertOnly(t, dir, ".manifest.lock", "manifest") // no temp file left
	stale := []string{".manifest.123abc.tmp", "hints/.a.456def.tmp"}
	for _, name := range stale {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := c.ListObjects(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].Name != "manifest" {
		t.Fatalf("listed %+v (%v), want the manifest alone", infos, err)
	}
	l, err := c.AcquireLease(ctx, lease.Holder{Owner: "w"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	assertOnly(t, dir, ".manifest.lock", "hints", "manifest")
	assertOnly(t, filepath.Join(dir, "hints"))
}

// While another process holds an object's lock, a compare-and-swap and an
// unconditional write of it wait, and give up with their context, leaving
// the object as it was; a create of another object does not wait.
func TestObjectLockIsHonoured(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.New(root)
	w := createThenSwap(t, c)
	lock, err := os.OpenFile(filepath.Join(storage.FileObjectDir(root), ".manifest.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []storage.WriteOptions{{IfMatch: w.ETag}, {}} {
		tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := c.WriteObject(tctx, "manifest", strings.NewReader("three"), opts)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write %s under another's lock: got %v, want it to wait until its deadline", opts, err)
		}
	}
	if err := c.DeleteObjects(ctx, []string{"other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteObject(ctx, "other", strings.NewReader("x"), storage.WriteOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	b, info, err := storage.ReadAllObject(ctx, c, "manifest", storage.ReadOptions{}, 100)
	if err != nil || string(b) != "two" || info.ETag != w.ETag {
		t.Fatalf("after writes that gave up: %q, %+v, %v", b, info, err)
	}
	assertOnly(t, storage.FileObjectDir(root), ".manifest.lock", "manifest", "other")
}

// createThenSwap creates the manifest ("one"), then swaps it ("two") as a
// writer replaces its manifest, which makes its lock file.
func createThenSwap(t *testing.T, c *file.Client) storage.ObjectInfo {
	t.Helper()
	ctx := context.Background()
	w, err := c.WriteObject(ctx, "manifest", strings.NewReader("one"), storage.WriteOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if w, err = c.WriteObject(ctx, "manifest", strings.NewReader("two"), storage.WriteOptions{IfMatch: w.ETag}); err != nil {
		t.Fatal(err)
	}
	return w
}
