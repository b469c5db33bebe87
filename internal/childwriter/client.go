package childwriter

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/lease"
	"github.com/ltxvfs/ltxvfs/storage"
	"github.com/ltxvfs/ltxvfs/storage/file"
)

// leaseElsewhere is a replica whose lease is taken in another directory
// (see Config.LeaseDir). Embedding the interface hides the replica's own
// lease.
type leaseElsewhere struct {
	storage.Client
	leases *file.Client
}

var _ lease.Leaser = leaseElsewhere{}

func (c leaseElsewhere) AcquireLease(ctx context.Context, holder lease.Holder, ttl time.Duration) (lease.Lease, error) {
	return c.leases.AcquireLease(ctx, holder, ttl)
}

// recorder prints a line for every LTX file written (see Config.Record):
//
//	wrote <level> <minTXID> <maxTXID> <sha256 of the bytes>
type recorder struct {
	storage.Client
	mu sync.Mutex // one line at a time
}

var (
	_ storage.Wrapper   = (*recorder)(nil)
	_ storage.AllLister = (*recorder)(nil)
)

// Unwrap lets lease.Find find the replica's lease.
func (c *recorder) Unwrap() storage.Client { return c.Client }

// AllLTXFiles lists as the replica's client does.
func (c *recorder) AllLTXFiles(ctx context.Context, useMetadata bool) ([]*ltx.FileInfo, error) {
	if !storage.CanListAll(c.Client) {
		return storage.ListEachLevel(ctx, c.Client, useMetadata, 0)
	}
	return c.Client.(storage.AllLister).AllLTXFiles(ctx, useMetadata)
}

func (c *recorder) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	h := sha256.New()
	info, err := c.Client.WriteLTXFile(ctx, level, minTXID, maxTXID, io.TeeReader(r, h))
	if err == nil {
		c.mu.Lock()
		fmt.Fprintf(os.Stdout, "wrote %d %s %s %x\n", level, minTXID, maxTXID, h.Sum(nil))
		c.mu.Unlock()
	}
	return info, err
}
