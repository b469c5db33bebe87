package plan

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/superfly/ltx"
)

// Errors of planning. Both wrap into messages that give the TXID asked for
// and the range that can be served.
var (
	// ErrNoFiles: the replica holds no LTX file at all.
	ErrNoFiles = errors.New("replica holds no LTX files")
	// ErrTXIDNotFound: the TXID is beyond the newest one in the replica.
	ErrTXIDNotFound = errors.New("txid not found")
	// ErrTXIDUnavailable: the TXID is in the past but no chain of retained
	// files rebuilds it (retention removed what it needed).
	ErrTXIDUnavailable = errors.New("txid not restorable")
)

// Plan chooses the files that rebuild the database at target, in the order
// to apply them: a file holding the whole database (a snapshot: MinTXID 1,
// at any level), then files that extend it contiguously up to exactly
// target, preferring at each step the file that reaches furthest, so that a
// plan has as few files as the replica allows. A target of 0 means the
// newest TXID that can be rebuilt.
//
// files may come from any levels, in any order.
func Restore(files []*ltx.FileInfo, target ltx.TXID) ([]*ltx.FileInfo, error) {
	if len(files) == 0 {
		return nil, ErrNoFiles
	}
	sorted := slices.Clone(files)
	// By MinTXID, then reach (MaxTXID) descending, then level descending:
	// among equals the compacted file is the larger, fewer-files choice.
	slices.SortFunc(sorted, func(a, b *ltx.FileInfo) int {
		return cmp.Or(cmp.Compare(a.MinTXID, b.MinTXID), cmp.Compare(b.MaxTXID, a.MaxTXID), cmp.Compare(b.Level, a.Level))
	})
	var newest ltx.TXID
	for _, f := range sorted {
		newest = max(newest, f.MaxTXID)
	}
	if target > newest {
		return nil, fmt.Errorf("%w: txid %s is beyond the latest TXID %s", ErrTXIDNotFound, target, newest)
	}

	var starts []*ltx.FileInfo
	for _, f := range sorted {
		if f.MinTXID == 1 && (target == 0 || f.MaxTXID <= target) {
			starts = append(starts, f)
		}
	}
	// Newest snapshot first: it needs the fewest files after it.
	slices.SortStableFunc(starts, func(a, b *ltx.FileInfo) int { return cmp.Compare(b.MaxTXID, a.MaxTXID) })

	var best []*ltx.FileInfo
	for _, start := range starts {
		plan := extend(sorted, start, target)
		last := plan[len(plan)-1].MaxTXID
		if target != 0 && last == target {
			return plan, nil
		}
		if target == 0 && (best == nil || last > best[len(best)-1].MaxTXID) {
			best = plan
		}
	}
	if best != nil {
		return best, nil
	}
	lo, hi := Restorable(files)
	if target == 0 || hi == 0 {
		return nil, fmt.Errorf("%w: no snapshot (a file starting at TXID 1) is retained", ErrTXIDUnavailable)
	}
	return nil, fmt.Errorf("%w: txid %s cannot be rebuilt from the retained files (restorable: %s..%s, not every TXID between)", ErrTXIDUnavailable, target, lo, hi)
}

// extend follows start with the files that reach furthest, never past
// target (0: no limit), until no file continues the chain.
func extend(sorted []*ltx.FileInfo, start *ltx.FileInfo, target ltx.TXID) []*ltx.FileInfo {
	plan := []*ltx.FileInfo{start}
	cur := start.MaxTXID
	for target == 0 || cur < target {
		var next *ltx.FileInfo
		for _, f := range sorted {
			if f.MinTXID > cur+1 {
				break
			}
			if f.MaxTXID <= cur || (target != 0 && f.MaxTXID > target) {
				continue
			}
			if next == nil || f.MaxTXID > next.MaxTXID || (f.MaxTXID == next.MaxTXID && f.MinTXID < next.MinTXID) {
				next = f
			}
		}
		if next == nil {
			break
		}
		plan = append(plan, next)
		cur = next.MaxTXID
	}
	return plan
}

// Restorable reports the oldest and newest TXIDs that a plan can reach from
// some retained snapshot (0, 0 if none). TXIDs between them are not all
// guaranteed: a compacted file only serves its MaxTXID.
func Restorable(files []*ltx.FileInfo) (oldest, newest ltx.TXID) {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b *ltx.FileInfo) int { return cmp.Compare(a.MinTXID, b.MinTXID) })
	for _, f := range sorted {
		if f.MinTXID != 1 {
			continue
		}
		if oldest == 0 || f.MaxTXID < oldest {
			oldest = f.MaxTXID
		}
		plan := extend(sorted, f, 0)
		newest = max(newest, plan[len(plan)-1].MaxTXID)
	}
	return oldest, newest
}
