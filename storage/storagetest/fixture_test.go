package storagetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/fixture"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
	"github.com/ltxvfs/ltxvfs/storage/wrap"
)

// recorder is a testing.TB that records failures instead of failing the
// test, so the checker's own failures can be tested.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Fail()   { r.add("Fail") }
func (r *recorder) FailNow() {
	r.add("FailNow")
	runtime.Goexit()
}
func (r *recorder) Error(args ...any)                 { r.add(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.add(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recorder) add(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, msg)
}

// check runs the fixture checker and returns its failures.
func check(t *testing.T, c storage.Client, m *fixture.Manifest) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		CheckLitestreamFixture(r, c, m)
	}()
	<-done
	return r.failures
}

func TestCheckLitestreamFixture(t *testing.T) {
	fresh := func(t *testing.T) (string, *fixture.Manifest) {
		dir := t.TempDir()
		m, err := fixture.Copy(dir)
		if err != nil {
			t.Fatal(err)
		}
		return dir, m
	}
	path := func(dir string, f fixture.File) string { return filepath.Join(dir, filepath.FromSlash(f.Path)) }

	t.Run("PassesOnTheFixture", func(t *testing.T) {
		dir, m := fresh(t)
		if failures := check(t, wrap.NewCounting(file.New(dir)), m); len(failures) != 0 {
			t.Fatalf("the checker failed a faithful copy: %q", failures)
		}
	})

	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, m *fixture.Manifest) storage.Client
		want   string // in a failure message
	}{
		{"FlippedBit", func(t *testing.T, dir string, m *fixture.Manifest) storage.Client {
			name := path(dir, m.Files[4])
			b, _ := os.ReadFile(name)
			b[200] ^= 0x10
			writeKeepingTime(t, name, b, m.Files[4])
			return file.New(dir)
		}, "sha256"},
		{"MissingFile", func(t *testing.T, dir string, m *fixture.Manifest) storage.Client {
			os.Remove(path(dir, m.FilesAt(1)[0]))
			return file.New(dir)
		}, "level 1 from TXID 0000000000000000 lists 0 files"},
		{"ForeignFileListed", func(t *testing.T, dir string, m *fixture.Manifest) storage.Client {
			tmp := filepath.Join(dir, "ltx", "0", "0000000000000013-0000000000000013.ltx.tmp")
			b, _ := os.ReadFile(tmp)
			os.WriteFile(strings.TrimSuffix(tmp, ".tmp"), b, 0o644)
			return file.New(dir)
		}, "level 0 from TXID 0000000000000000 lists 13 files"},
		{"FreshCheckoutMtimes", func(t *testing.T, dir string, m *fixture.Manifest) storage.Client {
			now := time.Now()
			os.Chtimes(path(dir, m.Files[0]), now, now)
			return file.New(dir)
		}, "want the header timestamp"},
		{"RangesIgnored", func(t *testing.T, dir string, m *fixture.Manifest) storage.Client {
			return wrongRanges{file.New(dir)}
		}, "ranged read of the trailer"},
		{"ListAllOutOfOrder", func(t *testing.T, dir string, m *fixture.Manifest) storage.Client {
			return reversedListAll{file.New(dir)}
		}, "every level lists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, m := fresh(t)
			failures := check(t, tc.damage(t, dir, m), m)
			if len(failures) == 0 {
				t.Fatal("the checker passed a damaged replica")
			}
			if !strings.Contains(strings.Join(failures, "\n"), tc.want) {
				t.Fatalf("failures %q do not say %q", failures, tc.want)
			}
		})
	}
}

func writeKeepingTime(t *testing.T, name string, b []byte, f fixture.File) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(name, f.CreatedAt(), f.CreatedAt()); err != nil {
		t.Fatal(err)
	}
}

// reversedListAll lists every level at once from the last file to the
// first.
type reversedListAll struct{ *file.Client }

func (c reversedListAll) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	infos, err := c.Client.AllLTXFiles(ctx, useMetadata)
	slices.Reverse(infos)
	return infos, err
}

// wrongRanges serves every ranged read from the start of the file.
type wrongRanges struct{ storage.Client }

func (c wrongRanges) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	return c.Client.OpenLTXFile(ctx, level, minTXID, maxTXID, 0, size)
}
