//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package file

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ltxvfs/ltxvfs/lease"
)

// AcquireLease is not supported on this system: file locks are not
// available to the file backend here.
func (c *Client) AcquireLease(context.Context, lease.Holder, time.Duration) (lease.Lease, error) {
	return nil, fmt.Errorf("lease %s: %w", c.root, errors.ErrUnsupported)
}
