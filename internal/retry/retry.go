package retry

import (
	"context"
	"errors"
	"os"
	"time"
)

// Do runs fn up to three times, backing off (50 ms, then 100 ms), while
// it fails with an error that may pass: not a missing file, not the end
// of ctx. One request among the many of a compaction or a restore should
// not fail it whole.
func Do(ctx context.Context, fn func() error) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 3 || ctx.Err() != nil || errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
