package pagecache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

func openDisk(t *testing.T, dir string, max int64) *Disk {
	t.Helper()
	d, err := OpenDisk(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// readAll reads pages through c and checks their bytes.
func readAll(t *testing.T, c *Cache, f *testFile, pgnos ...uint32) {
	t.Helper()
	for _, pgno := range pgnos {
		page, err := c.Page(context.Background(), f.refs[pgno])
		if err != nil || !bytes.Equal(page, f.pages[pgno]) {
			t.Fatalf("page %d: %v (right bytes: %v)", pgno, err, bytes.Equal(page, f.pages[pgno]))
		}
	}
}

// pageFiles lists the page files written whole under dir: a temp file the
// tier is still writing (or renaming) is not one.
func pageFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(path, ".page") {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// TestDiskTierSurvivesARestart: pages read for misses are kept on disk,
// and a cache made later on the same directory serves them without a
// request.
func TestDiskTierSurvivesARestart(t *testing.T) {
	dir, files := newTestReplica(t, 20)
	f := files[0]
	tier := t.TempDir()
	c := New(file.New(dir), Options{Disk: openDisk(t, tier, 0)})
	readAll(t, c, f, 4, 5, 6, 7)
	waitFor(t, "the pages to reach the disk", func() bool { return len(pageFiles(t, tier)) == 4 })
	c.Close()

	counting := wrap.NewCounting(file.New(dir))
	d := openDisk(t, tier, 0)
	again := New(counting, Options{Disk: d})
	readAll(t, again, f, 4, 5, 6, 7, 8)
	if n := counting.Counts().Opens; n != 1 {
		t.Fatalf("%d reads after a restart, want 1 (page 8, never read before)", n)
	}
	if s := d.Stats(); s.Hits != 4 {
		t.Fatalf("disk stats %+v, want 4 hits", s)
	}
	again.Close() // page 8 is written, and nothing is renamed under the walk
	// The pages are this user's alone, however the root came to be.
	err := filepath.WalkDir(tier, func(path string, e os.DirEntry, err error) error {
		if err != nil || path == tier {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiskTierNeverServesDamage: a page file cut short, with a flipped
// byte, or holding another page is dropped, and the page is read from
// storage.
func TestDiskTierNeverServesDamage(t *testing.T) {
	dir, files := newTestReplica(t, 20)
	f := files[0]
	for name, damage := range map[string]func(path string, b []byte) []byte{
		"torn":         func(_ string, b []byte) []byte { return b[:len(b)/2] },
		"empty":        func(_ string, b []byte) []byte { return nil },
		"flipped byte": func(_ string, b []byte) []byte { b[len(b)-7] ^= 1; return b },
		"another page": func(path string, _ []byte) []byte {
			other, err := os.ReadFile(strings.Replace(path, "/5.page", "/6.page", 1))
			if err != nil {
				t.Fatal(err)
			}
			return other
		},
	} {
		t.Run(name, func(t *testing.T) {
			tier := t.TempDir()
			c := New(file.New(dir), Options{Disk: openDisk(t, tier, 0)})
			readAll(t, c, f, 5, 6)
			waitFor(t, "the pages to reach the disk", func() bool { return len(pageFiles(t, tier)) == 2 })
			c.Close()
			var path string
			for _, p := range pageFiles(t, tier) {
				if strings.HasSuffix(p, "/5.page") {
					path = p
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(path, b), 0o644); err != nil {
				t.Fatal(err)
			}
			counting := wrap.NewCounting(file.New(dir))
			again := New(counting, Options{Disk: openDisk(t, tier, 0)})
			defer again.Close()
			readAll(t, again, f, 5, 6)
			if n := counting.Counts().Opens; n != 1 {
				t.Fatalf("%d reads, want 1: the damaged page 5 from storage", n)
			}
		})
	}
}

// TestDiskTierBound: the files stay within the bound, and a tier opened
// with a smaller bound drops the oldest files found; temp files left by a
// crash go.
func TestDiskTierBound(t *testing.T) {
	dir, files := newTestReplica(t, 40)
	f := files[0]
	tier := t.TempDir()
	per := int64(pageSize + diskHeaderSize)
	d := openDisk(t, tier, 10*per)
	c := New(file.New(dir), Options{Disk: d})
	for pgno := uint32(1); pgno <= 30; pgno++ {
		readAll(t, c, f, pgno)
		path := d.path(f.refs[pgno].Key)
		waitFor(t, "the page to reach the disk", func() bool {
			_, err := os.Stat(path)
			return err == nil && d.Stats().Bytes == min(int64(pgno), 10)*per
		})
	}
	if n := len(pageFiles(t, tier)); n != 10 {
		t.Fatalf("%d page files under a bound of 10", n)
	}
	c.Close()
	stray := filepath.Join(tier, "x.page.123.tmp")
	if err := os.WriteFile(stray, []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	small := openDisk(t, tier, 4*per)
	waitFor(t, "the start scan", func() bool { return len(pageFiles(t, tier)) == 4 })
	if s := small.Stats(); s.Bytes != 4*per {
		t.Fatalf("after a start with a bound of 4 pages: %+v", s)
	}
	var kept []string
	for _, p := range pageFiles(t, tier) {
		kept = append(kept, filepath.Base(p))
	}
	slices.Sort(kept)
	if want := []string{"27.page", "28.page", "29.page", "30.page"}; !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want the newest %v", kept, want)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
}

// TestDiskTierRefusesSharedDirectory: a directory other users may write to
// could hold planted pages; it is refused with an error naming it. A new
// directory is made for this user alone.
func TestDiskTierRefusesSharedDirectory(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	if _, err := OpenDisk(shared, 0); err == nil || !strings.Contains(err.Error(), shared) || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("OpenDisk on a 0777 directory: %v, want a refusal naming it", err)
	}

	fresh := filepath.Join(t.TempDir(), "a", "b")
	openDisk(t, fresh, 0)
	fi, err := os.Stat(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Fatalf("new disk cache directory has mode %04o, want 0700", perm)
	}

	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDisk(notDir, 0); err == nil || !strings.Contains(err.Error(), notDir) {
		t.Fatalf("OpenDisk on a file: %v, want an error naming it", err)
	}
}

// TestDiskTierForgetsDamagedFoundFile: a damaged file found at start is
// removed when read, and its bytes stop counting against the bound at once
// (not only when eviction would have reached it).
func TestDiskTierForgetsDamagedFoundFile(t *testing.T) {
	dir, files := newTestReplica(t, 20)
	f := files[0]
	tier := t.TempDir()
	c := New(file.New(dir), Options{Disk: openDisk(t, tier, 0)})
	readAll(t, c, f, 5, 6)
	waitFor(t, "the pages to reach the disk", func() bool { return len(pageFiles(t, tier)) == 2 })
	c.Close()
	var damaged, kept string
	for _, p := range pageFiles(t, tier) {
		if strings.HasSuffix(p, "/5.page") {
			damaged = p
		} else {
			kept = p
		}
	}
	if err := os.WriteFile(damaged, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	keptInfo, err := os.Stat(kept)
	if err != nil {
		t.Fatal(err)
	}

	d := openDisk(t, tier, 0)
	want := keptInfo.Size() + int64(len("damaged"))
	waitFor(t, "the files to be found", func() bool { return d.Stats().Bytes == want })
	if _, ok := d.get(f.refs[5].Key, pageSize); ok {
		t.Fatal("a damaged page was served")
	}
	if s := d.Stats(); s.Bytes != keptInfo.Size() || s.Removed != 1 {
		t.Fatalf("after the damaged file went: %d bytes held, %d removed; want %d and 1", s.Bytes, s.Removed, keptInfo.Size())
	}
}
