package index

import (
	"context"

	"github.com/superfly/ltx"
)

// The page cache keys a page by the file it was read from. The bytes of a
// page at a TXID are the same whichever valid chain of files serves them, so
// when a version is rebuilt (retention removed files, a gap or a new
// snapshot forced a fresh plan, a replan) it keeps pointing at the files
// the previous version read, wherever that is provably the same page
// version and the file still exists: a follower's cache stays warm.

// listing is the set of files a listing of the replica returned. A nil
// listing knows nothing (a probe lists nothing): every file counts as
// listed.
type listing map[fileKey]struct{}

func newListing(infos []*ltx.FileInfo) listing {
	l := make(listing, len(infos))
	for _, info := range infos {
		l[keyOf(info)] = struct{}{}
	}
	return l
}

func (l listing) has(f *File) bool {
	if l == nil {
		return true
	}
	_, ok := l[keyOf(&f.Info)]
	return ok
}

// Move is a page whose entry moved to another file holding the same bytes,
// because its file vanished from storage: a page cache can hold the page
// under To without reading it again.
type Move struct {
	Pgno     uint32
	From, To Entry
}

// kinship says which pages two versions of a replica hold with the same
// bytes, whatever files they read them from. Either of two reasons will do:
//   - both entries come from files that end at or before tc, the newest end
//     of a file both plans apply: each is the page's newest version at or
//     below tc, in one history;
//   - a bridge of files leads from the older version's TXID to the newer's,
//     each continuing the one before, and none touches the page (nor cuts
//     the database below it): the page did not change in between. At the
//     same TXID and state the bridge is empty and every page qualifies.
type kinship struct {
	tc      ltx.TXID
	bridged bool
	commit  uint32   // the smallest commit along the bridge
	touched []uint64 // bit set of the pages the bridge writes
}

func (k *kinship) none() bool { return k.tc == 0 && !k.bridged }

func (k *kinship) same(pgno uint32, a, b *File) bool {
	if a.Info.MaxTXID <= k.tc && b.Info.MaxTXID <= k.tc {
		return true
	}
	if !k.bridged || pgno > k.commit {
		return false
	}
	i := int(pgno / 64)
	return i >= len(k.touched) || k.touched[i]&(1<<(pgno%64)) == 0
}

// relate works out the kinship of old and n; bridge, if not nil, is a chain
// of files from the older one's TXID to the newer's (see bridgeInfos),
// checked here.
func relate(old, n *Version, bridge []*fileIndex) kinship {
	var k kinship
	if old.pageSize != n.pageSize {
		return k
	}
	inOld := make(map[fileKey]bool, len(old.plan))
	for _, f := range old.plan {
		inOld[keyOf(&f.Info)] = true
	}
	for _, f := range n.plan {
		if inOld[keyOf(&f.Info)] {
			k.tc = max(k.tc, f.Info.MaxTXID)
		}
	}
	lo, hi := old, n
	if hi.txid < lo.txid {
		lo, hi = hi, lo
	}
	if lo.txid == hi.txid {
		k.bridged = len(bridge) == 0 && sameState(lo.last, hi.last)
		k.commit = hi.commit
		return k
	}
	if len(bridge) == 0 || bridge[0].file.Info.MinTXID != lo.txid+1 || checkContinues(lo.last, bridge[0].file) != nil ||
		!sameState(bridge[len(bridge)-1].file, hi.last) || checkPageSizes(lo.pageSize, bridge) != nil {
		return k
	}
	k.commit = lo.commit
	for i, fx := range bridge {
		if i > 0 && checkContinues(bridge[i-1].file, fx.file) != nil {
			return kinship{tc: k.tc}
		}
		k.commit = min(k.commit, fx.file.Header.Commit)
		for _, pgno := range fx.pgnos {
			if j := int(pgno / 64); j < len(k.touched) {
				k.touched[j] |= 1 << (pgno % 64)
			} else if pgno <= k.commit {
				k.touched = append(k.touched, make([]uint64, j+1-len(k.touched))...)
				k.touched[j] |= 1 << (pgno % 64)
			}
		}
	}
	k.bridged = true
	return k
}

// adopt returns n with old's entries wherever they hold the same bytes
// (see kinship) and their file is still listed; n itself when there is
// nothing to adopt. Where old's entry holds the same bytes but its file
// vanished, n's entry stays and the move is recorded, so that a cache can
// keep the page under its new file.
func (n *Version) adopt(old *Version, k kinship, listed listing, moves *[]Move) *Version {
	if old == nil || old == n || k.none() {
		return n
	}
	var b *mapBuilder
	nc, oc := n.pages.chunks, old.pages.chunks
	for i := range min(len(nc), len(oc)) {
		if nc[i] == nil || oc[i] == nil || nc[i] == oc[i] {
			continue
		}
		nch, och := nc[i], oc[i]
		for j := range chunkSize {
			ns, os := nch.slots[j], och.slots[j]
			if ns.size == 0 || os.size == 0 {
				continue
			}
			nf, of := nch.files[ns.file], och.files[os.file]
			pgno := uint32(i<<chunkShift | j)
			if (nf == of && ns.offset == os.offset) || !k.same(pgno, nf, of) {
				continue
			}
			if !listed.has(of) {
				*moves = append(*moves, Move{
					Pgno: pgno,
					From: Entry{File: of, Offset: os.offset, Size: int64(os.size)},
					To:   Entry{File: nf, Offset: ns.offset, Size: int64(ns.size)},
				})
				continue
			}
			if b == nil {
				b = newMapBuilder(n.pages)
			}
			b.set(pgno, of, os.offset, os.size)
		}
	}
	if b == nil {
		return n
	}
	return finish(b, n.pageSize, n.last, n.plan)
}

// bridgeInfos returns listed files that lead from TXID from to TXID to,
// each starting right after the one before (none starts at or before
// from), or nil if there is no such chain. It prefers files that reach
// further, so that the chain has few files.
func bridgeInfos(infos []*ltx.FileInfo, from, to ltx.TXID) []*ltx.FileInfo {
	byMin := map[ltx.TXID][]*ltx.FileInfo{}
	for _, f := range infos {
		if f.MinTXID > from && f.MaxTXID <= to && f.MinTXID <= f.MaxTXID {
			byMin[f.MinTXID] = append(byMin[f.MinTXID], f)
		}
	}
	memo := map[ltx.TXID][]*ltx.FileInfo{} // the best chain from a TXID; nil: none
	var walk func(cur ltx.TXID) []*ltx.FileInfo
	walk = func(cur ltx.TXID) []*ltx.FileInfo {
		if cur == to {
			return []*ltx.FileInfo{}
		}
		if best, ok := memo[cur]; ok {
			return best
		}
		var best []*ltx.FileInfo
		for _, f := range byMin[cur+1] {
			if rest := walk(f.MaxTXID); rest != nil && (best == nil || len(rest)+1 < len(best)) {
				best = append([]*ltx.FileInfo{f}, rest...)
			}
		}
		memo[cur] = best
		return best
	}
	if from >= to {
		return nil
	}
	return walk(from)
}

// maxBridge bounds the files of a bridge: each may cost a request.
const maxBridge = 64

// bridge loads the page indexes of a chain of listed files from old's TXID
// to n's, for relate; nil when there is none (or it is long, or a read
// fails: the pages are then read again, never served wrong).
func (x *Index) bridge(ctx context.Context, infos []*ltx.FileInfo, old, n *Version) []*fileIndex {
	lo, hi := old.txid, n.txid
	if hi < lo {
		lo, hi = hi, lo
	}
	chain := bridgeInfos(infos, lo, hi)
	if len(chain) == 0 || len(chain) > maxBridge {
		return nil
	}
	fxs, _, err := x.cat.load(ctx, chain)
	if err != nil {
		x.log.Debug("could not read the files between two versions; reading their pages again", "replica", x.client.String(), "err", err)
		return nil
	}
	return fxs
}

// vanished reports whether v reads a page from a file the listing no
// longer holds.
func (v *Version) vanished(listed listing) bool {
	if listed == nil {
		return false
	}
	for _, f := range v.Files() {
		if !listed.has(f) {
			return true
		}
	}
	return false
}
