package storagetest

import (
	"context"
	"io"
	"testing"

	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/storage"
)

// ReadFile reads a whole LTX file of a replica, as stored, failing tb on
// any error.
func ReadFile(tb testing.TB, c storage.Client, level int, minTXID, maxTXID ltx.TXID) []byte {
	tb.Helper()
	rc, err := c.OpenLTXFile(context.Background(), level, minTXID, maxTXID, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
