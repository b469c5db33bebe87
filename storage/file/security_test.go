//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package file_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/storagetest"
)

// securityFile is a valid LTX file [1,1].
func securityFile(t *testing.T) []byte {
	db := storagetest.NewDB(512)
	return db.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(512, 1, 1)})
}

// Levels outside the layout are refused before any path is built; TXIDs
// are formatted, so no key escapes the root through a name.
func TestKeysStayInTheRoot(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.New(filepath.Join(root, "replica"))
	b := securityFile(t)
	for _, level := range []int{-1, -10, storage.SnapshotLevel + 1, 15, 17, 1 << 40} {
		if _, err := c.LTXFiles(ctx, level, 0, false); err == nil {
			t.Errorf("list level %d: no error", level)
		}
		if _, err := c.OpenLTXFile(ctx, level, 1, 1, 0, 0); err == nil {
			t.Errorf("open at level %d: no error", level)
		}
		if _, err := c.WriteLTXFile(ctx, level, 1, 1, bytes.NewReader(b)); err == nil {
			t.Errorf("write at level %d: no error", level)
		}
		if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: level, MinTXID: 1, MaxTXID: 1}}); err == nil {
			t.Errorf("delete at level %d: no error", level)
		}
	}
	for _, txid := range []ltx.TXID{1, 1 << 63, ^ltx.TXID(0)} {
		p := storage.FilePath(c.Root(), 0, txid, txid)
		if rel, err := filepath.Rel(c.Root(), p); err != nil || !filepath.IsLocal(rel) {
			t.Errorf("TXID %d: path %s is not under the root %s", txid, p, c.Root())
		}
	}
	assertOnly(t, root) // nothing was created
}

// A root that is itself a symbolic link (a replica on another disk) works.
func TestRootMayBeASymlink(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c := file.New(link)
	b := securityFile(t)
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b)); err != nil {
		t.Fatalf("write through a symlinked root: %v", err)
	}
	infos, err := storage.ListLevel(ctx, c, 0, 0, false)
	if err != nil || len(infos) != 1 {
		t.Fatalf("list through a symlinked root: %d files, %v", len(infos), err)
	}
	if got := storagetest.ReadFile(t, c, 0, 1, 1); !bytes.Equal(got, b) {
		t.Fatal("read through a symlinked root: content differs")
	}
	if _, err := os.Stat(storage.FilePath(real, 0, 1, 1)); err != nil {
		t.Fatalf("the file is not in the link's target: %v", err)
	}
	l, err := c.AcquireLease(ctx, lease.Holder{Owner: "w"}, time.Minute)
	if err != nil {
		t.Fatalf("lease through a symlinked root: %v", err)
	}
	l.Release(ctx)
}

// A level directory, the ltx directory, an LTX file or the lease file that
// is a symbolic link pointing out of the root is refused: nothing outside
// the root is listed, read, written, deleted or truncated through it.
func TestSymlinksOutOfTheRootAreRefused(t *testing.T) {
	ctx := context.Background()
	b := securityFile(t)
	for _, tt := range []struct {
		name string
		link func(t *testing.T, root, outside string) // makes the link; outside holds a valid file
	}{
		{"level directory", func(t *testing.T, root, outside string) {
			mustSymlink(t, outside, storage.FileLevelDir(root, 0))
		}},
		{"ltx directory", func(t *testing.T, root, outside string) {
			mustSymlink(t, filepath.Dir(outside), filepath.Join(root, "ltx"))
		}},
		{"ltx file", func(t *testing.T, root, outside string) {
			mustSymlink(t, filepath.Join(outside, ltx.FormatFilename(1, 1)), storage.FilePath(root, 0, 1, 1))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside", "0") // named like a level
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			secret := filepath.Join(outside, ltx.FormatFilename(1, 1))
			if err := os.WriteFile(secret, b, 0o644); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(base, "replica")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.link(t, root, outside)
			c := file.New(root)

			if infos, err := storage.ListLevel(ctx, c, 0, 0, false); err == nil && len(infos) > 0 {
				t.Errorf("listed %d files through the link", len(infos))
			}
			if rc, err := c.OpenLTXFile(ctx, 0, 1, 1, 0, 0); err == nil {
				got, _ := io.ReadAll(rc)
				rc.Close()
				t.Errorf("read %d bytes of %s through the link", len(got), secret)
			}
			db := storagetest.NewDB(512)
			db.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(512, 1, 1)})
			next := db.Apply(t, 1, map[uint32][]byte{1: storagetest.FillPage(512, 1, 2)})
			c.WriteLTXFile(ctx, 0, 2, 2, bytes.NewReader(next)) // may fail; must not write outside
			if err := c.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: 1, MaxTXID: 1}}); err != nil {
				t.Logf("delete: %v", err)
			}
			if got, err := os.ReadFile(secret); err != nil || !bytes.Equal(got, b) {
				t.Errorf("the file outside the root was changed or removed (%v)", err)
			}
			assertOnly(t, outside, ltx.FormatFilename(1, 1))
		})
	}

	t.Run("lease file", func(t *testing.T) {
		base := t.TempDir()
		victim := filepath.Join(base, "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(base, "replica")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		mustSymlink(t, victim, filepath.Join(root, file.LeaseFileName))
		if l, err := file.New(root).AcquireLease(ctx, lease.Holder{Owner: "w"}, time.Minute); err == nil {
			l.Release(ctx)
			t.Errorf("took a lease through a symlink out of the root")
		}
		if got, _ := os.ReadFile(victim); string(got) != "precious" {
			t.Errorf("the file the lease link points to now holds %q", got)
		}
	})
}

// Links that stay inside the root are followed, as a directory would be.
func TestSymlinkInsideTheRootIsFollowed(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "store", "l0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "ltx"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, filepath.Join("..", "store", "l0"), storage.FileLevelDir(root, 0))
	c := file.New(root)
	b := securityFile(t)
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, bytes.NewReader(b)); err != nil {
		t.Fatalf("write into a level linked inside the root: %v", err)
	}
	if got := storagetest.ReadFile(t, c, 0, 1, 1); !bytes.Equal(got, b) {
		t.Fatal("read through a link inside the root: content differs")
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// assertOnly fails unless dir holds exactly the entries named.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("%s holds %q, want %q", dir, got, names)
		}
	}
}
