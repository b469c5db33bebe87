package vfs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/superfly/ltx"

	"github.com/ltxvfs/ltxvfs/internal/pointintime"
)

// Pragma answers the VFS's PRAGMAs, per connection (per attached schema):
//
//	ltx_txid           the TXID this connection sees (in a transaction:
//	                   the transaction's; outside one: its pin, or the latest)
//	ltx_txid=N|latest  pin at TXID N, or follow the newest TXID again
//	ltx_time           the commit time of that TXID, RFC 3339 (ms, UTC)
//	ltx_time=T|latest  pin at the newest TXID committed at or before T
//	ltx_lag            seconds since the newest TXID seen was committed
//	ltx_stats          what the last statement cost (stats.go), as text:
//	                   requests=3 bytes=12288 round_trips=2 cache_hits=10 cache_misses=3 disk_hits=0
//	ltx_wait='TOKEN'   see the commit of a read-your-writes token, waiting
//	                   for it while following (wait.go); returns the TXID
//	                   the connection sees then
//
// SQLite calls it when it prepares the statement. A setter returns the new
// value; inside an open read transaction it is an error, as the
// transaction's TXID cannot change.
func (f *file) Pragma(name, value string) (string, error) {
	switch name {
	case "ltx_txid", "ltx_time":
		if value == "" {
			return f.describe(name), nil
		}
		if f.lock >= 1 {
			return "", fmt.Errorf("%s=%s: cannot change the TXID inside a read transaction (it sees TXID %d until COMMIT or ROLLBACK)", name, value, f.tx.TXID())
		}
		if err := f.setPragma(name, value); err != nil {
			return "", err
		}
		return f.describe(name), nil
	case "ltx_stats":
		return f.statsPragma(value)
	case "ltx_wait":
		return f.waitPragma(value)
	case "ltx_lag":
		if value != "" {
			return "", fmt.Errorf("ltx_lag=%s: ltx_lag is read-only", value)
		}
		v := f.rep.idx.Latest()
		if v == nil {
			// Only pinned connections so far: nothing has listed the newest.
			var err error
			if v, err = f.rep.refresh(f.context()); err != nil {
				return "", fmt.Errorf("ltx_lag: %w", err)
			}
		}
		return strconv.FormatFloat(time.Since(v.Timestamp()).Seconds(), 'f', 3, 64), nil
	}
	return "", sqlite3.NOTFOUND
}

func (f *file) describe(name string) string {
	v := f.view()
	if name == "ltx_time" {
		return ltx.FormatTimestamp(v.Timestamp())
	}
	return strconv.FormatUint(uint64(v.TXID()), 10)
}

func (f *file) setPragma(name, value string) error {
	ctx := f.context()
	if strings.EqualFold(value, "latest") {
		if err := f.followLatest(ctx); err != nil {
			return fmt.Errorf("%s=%s: %w", name, value, err)
		}
		return nil
	}
	if name == "ltx_txid" {
		txid, err := pointintime.ParseTXID(value)
		if err != nil {
			return fmt.Errorf("%s=%s: %w (or 'latest')", name, value, err)
		}
		if err := f.pinTXID(ctx, txid); err != nil {
			return fmt.Errorf("%s=%s: %w", name, value, err)
		}
		return nil
	}
	t, err := pointintime.ParseTime(value, time.Now())
	if err != nil {
		return fmt.Errorf("%s=%s: %w (or 'latest')", name, value, err)
	}
	if err := f.pinTime(ctx, t); err != nil {
		return fmt.Errorf("%s=%s: %w", name, value, err)
	}
	return nil
}
