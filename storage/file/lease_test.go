//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

func TestLeaseIsExclusive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := file.New(dir), file.New(dir)

	la, err := a.AcquireLease(ctx, lease.Holder{Owner: "writer-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, lease.Holder{Owner: "writer-b"}, time.Minute); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("second lease: got %v, want ErrLeaseHeld", err)
	} else if !strings.Contains(err.Error(), "writer-a") {
		t.Fatalf("refusal does not name the holder: %v", err)
	}
	if err := la.Renew(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if time.Until(la.Expires()) < 50*time.Second {
		t.Fatalf("renewed lease expires at %v", la.Expires())
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := b.AcquireLease(ctx, lease.Holder{Owner: "writer-b"}, time.Minute)
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	defer lb.Release(ctx)
	if lease.Find(a) == nil {
		t.Fatal("FindLeaser does not find the file client's lease")
	}
}

// TestLeaseRemovesStaleTemps: the temp files of uploads that a killed
// writer never finished are removed when the next writer takes the lease;
// nothing else is.
func TestLeaseRemovesStaleTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stale := []string{
		"ltx/0/.0000000000000007-0000000000000007.ltx.1uprlszzm06ie.tmp",
		"ltx/9/.0000000000000001-0000000000000040.ltx.2v011suk9m6w6.tmp",
	}
	kept := []string{
		"ltx/0/0000000000000001-0000000000000001.ltx",
		"ltx/0/.notes.tmp",
		"ltx/0/.0000000000000007-0000000000000007.ltx",
		"other/.0000000000000007-0000000000000007.ltx.1uprlszzm06ie.tmp",
	}
	for _, p := range append(append([]string{}, stale...), kept...) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := file.New(dir).AcquireLease(ctx, lease.Holder{Owner: "writer"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	for _, p := range stale {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); !os.IsNotExist(err) {
			t.Errorf("stale temp file %s still there: %v", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
