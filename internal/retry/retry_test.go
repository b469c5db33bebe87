package retry_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/ltxvfs/ltxvfs/internal/retry"
)

func TestDo(t *testing.T) {
	ctx := context.Background()
	calls := 0
	transient := errors.New("503")
	if err := retry.Do(ctx, func() error {
		calls++
		if calls < 3 {
			return transient
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("a transient failure twice: %v after %d calls, want success after 3", err, calls)
	}
	calls = 0
	if err := retry.Do(ctx, func() error { calls++; return transient }); !errors.Is(err, transient) || calls != 3 {
		t.Fatalf("a lasting failure: %v after %d calls, want it after 3", err, calls)
	}
	calls = 0
	if err := retry.Do(ctx, func() error { calls++; return os.ErrNotExist }); !errors.Is(err, os.ErrNotExist) || calls != 1 {
		t.Fatalf("a missing file: %v after %d calls, want it at once", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	if err := retry.Do(cctx, func() error { calls++; return transient }); calls != 1 || err == nil {
		t.Fatalf("a cancelled context: %v after %d calls, want one call", err, calls)
	}
}
