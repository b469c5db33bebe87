//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package file_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

func TestLeaseIsExclusive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := file.New(dir), file.New(dir)

	la, err := a.AcquireLease(ctx, "writer-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, "writer-b", time.Minute); !errors.Is(err, storage.ErrLeaseHeld) {
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
	lb, err := b.AcquireLease(ctx, "writer-b", time.Minute)
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	defer lb.Release(ctx)
	if storage.FindLeaser(a) == nil {
		t.Fatal("FindLeaser does not find the file client's lease")
	}
}
