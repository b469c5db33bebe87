package plan

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/superfly/ltx"
)

// ErrTimeUnavailable: the time asked for is before every TXID that the
// retained files can rebuild.
var ErrTimeUnavailable = errors.New("time not restorable")

// TXIDAtTime returns the newest TXID that was committed at or before t and
// that the files can rebuild. A file's CreatedAt must be its header
// timestamp (list with useMetadata), which for a compacted file is the
// commit time of its MaxTXID: a TXID is never chosen for a time earlier
// than its commit.
func TXIDAt(files []*ltx.FileInfo, t time.Time) (ltx.TXID, error) {
	if len(files) == 0 {
		return 0, ErrNoFiles
	}
	cands := slices.Clone(files)
	slices.SortFunc(cands, func(a, b *ltx.FileInfo) int { return cmp.Compare(b.MaxTXID, a.MaxTXID) })
	var oldest time.Time
	tried := map[ltx.TXID]bool{}
	for _, f := range cands {
		if tried[f.MaxTXID] {
			continue
		}
		if f.CreatedAt.After(t) {
			if oldest.IsZero() || f.CreatedAt.Before(oldest) {
				oldest = f.CreatedAt
			}
			continue
		}
		tried[f.MaxTXID] = true
		if _, err := Restore(files, f.MaxTXID); err == nil {
			return f.MaxTXID, nil
		}
	}
	if oldest.IsZero() {
		return 0, fmt.Errorf("%w: no retained TXID committed at or before %s can be rebuilt", ErrTimeUnavailable, t.UTC().Format(ltx.RFC3339Milli))
	}
	return 0, fmt.Errorf("%w: %s is before the oldest restorable commit (%s)", ErrTimeUnavailable, t.UTC().Format(ltx.RFC3339Milli), oldest.UTC().Format(ltx.RFC3339Milli))
}
