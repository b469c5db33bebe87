package vfs

import (
	"context"
	"fmt"
	"io"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/pagecache"
)

// TEMPORARY(dev): a direct page reader until pagecache lands.
func init() {
	readPageDev = func(r *replica, ctx context.Context, ref pagecache.Ref) ([]byte, error) {
		rc, err := r.client.OpenLTXFile(ctx, ref.File.Level, ref.File.MinTXID, ref.File.MaxTXID, ref.Offset, ref.Size)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		hdr, data, err := ltx.DecodePageData(b)
		if err != nil {
			return nil, err
		}
		if hdr.Pgno != ref.Pgno {
			return nil, fmt.Errorf("pgno %d != %d", hdr.Pgno, ref.Pgno)
		}
		return data, nil
	}
}
