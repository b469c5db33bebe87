package index

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"
)

// Entry locates one page version: the frame (page header + LZ4 block) of
// Size bytes at Offset in File.
type Entry struct {
	File   *File
	Offset int64
	Size   int64
}

// Version is an immutable view of the database at one TXID. It is safe for
// concurrent use and never changes once returned.
type Version struct {
	txid     ltx.TXID
	pageSize uint32
	commit   uint32
	last     *File   // the file that ends at txid
	pages    pageMap // pgno -> newest frame at or below txid
	plan     []*File // the plan the version was built from, in order
	seq      uint64  // see Seq

	// files pages refers to, in plan order: made on first use, as it costs
	// a pass over the chunks that a poll does not need.
	filesOnce sync.Once
	files     []*File
}

// TXID is the transaction this version shows.
func (v *Version) TXID() ltx.TXID { return v.txid }

// Seq is distinct for every version built in this process, and the same
// for one version whenever it is asked. A reader that keeps what it read
// of a version (SQLite's own page cache, checked by the change counter the
// VFS serves) keys it by Seq, not by TXID: two versions of one TXID are
// not always the same bytes (a replica begun again, whose TXIDs now name
// other commits), and a replanned version is a new one.
func (v *Version) Seq() uint64 { return v.seq }

// versionSeq numbers the versions built (see Version.Seq).
var versionSeq atomic.Uint64

// Timestamp is the commit time of TXID (the header timestamp of the file
// that ends at TXID).
func (v *Version) Timestamp() time.Time { return time.UnixMilli(v.last.Header.Timestamp).UTC() }

// PageSize is the database page size in bytes.
func (v *Version) PageSize() uint32 { return v.pageSize }

// Commit is the database size in pages at TXID.
func (v *Version) Commit() uint32 { return v.commit }

// Lookup returns the newest version of page pgno at or below TXID. It
// returns false for pgno 0, pgno > Commit, and the lock page.
func (v *Version) Lookup(pgno uint32) (Entry, bool) {
	if pgno == 0 || pgno > v.commit || pgno == ltx.LockPgno(v.pageSize) {
		return Entry{}, false
	}
	return v.pages.get(pgno)
}

// Files are the files the version reads pages from, in plan order.
func (v *Version) Files() []*File {
	v.filesOnce.Do(func() {
		v.files = v.pages.files()
		slices.SortFunc(v.files, planOrder)
	})
	return v.files
}

// Plan is the files the version was built from, in the order they apply:
// a snapshot, then the files that extend it to TXID, including those whose
// pages newer files have all replaced (which Files leaves out).
func (v *Version) Plan() []*File { return slices.Clip(v.plan) }

// planOrder sorts files as a plan applies them: by the TXID they reach,
// a snapshot before the files that follow it.
func planOrder(a, b *File) int {
	return cmp.Or(cmp.Compare(a.Info.MaxTXID, b.Info.MaxTXID), cmp.Compare(a.Info.MinTXID, b.Info.MinTXID), cmp.Compare(b.Info.Level, a.Info.Level))
}

// buildVersion builds a version from a plan (Plan's output, fetched):
// the snapshot, then each file in turn, newest MaxTXID last.
func buildVersion(plan []*fileIndex) (*Version, error) {
	if len(plan) == 0 || !plan[0].file.Header.IsSnapshot() {
		return nil, fmt.Errorf("build version: plan does not start with a snapshot") // Plan never does this
	}
	if err := checkPageSizes(plan[0].file.Header.PageSize, plan); err != nil {
		return nil, err
	}
	for i := 1; i < len(plan); i++ {
		if err := checkContinues(plan[i-1].file, plan[i].file); err != nil {
			return nil, err
		}
	}
	b := newMapBuilder(pageMap{})
	for _, fx := range plan {
		applyNewer(b, fx)
	}
	return finish(b, plan[0].file.Header.PageSize, plan[len(plan)-1].file, files(plan)), nil
}

// extend builds the version that follows v from a plan that continues it:
// the files of plan that v did not apply, files that end after v's TXID
// applied as newer files, files that end at or before it (a compaction or
// snapshot that arrived late) only where v reads from a file that vanished
// from the listing (see applyLate). It returns nil when the plan does not
// continue v (a gap after retention, a new snapshot after v, a replica
// started again); the caller then builds from the plan afresh. It returns
// v itself when the plan holds nothing new.
//
// Pages of v that still exist are never repointed: the page cache holds
// them under their file, and the same bytes under a compacted file's name
// would be a miss.
func (v *Version) extend(plan []*fileIndex, listed listing, moves *[]Move) *Version {
	applied := map[fileKey]bool{}
	for _, f := range v.plan {
		applied[keyOf(&f.Info)] = true
	}
	var late, newer []*fileIndex
	for _, fx := range plan {
		switch {
		case applied[keyOf(&fx.file.Info)]:
		case fx.file.Info.MaxTXID <= v.txid:
			late = append(late, fx)
		default:
			newer = append(newer, fx)
		}
	}
	if len(late) == 0 && len(newer) == 0 {
		return v
	}
	if checkPageSizes(v.pageSize, late) != nil || checkPageSizes(v.pageSize, newer) != nil {
		return nil
	}
	last := plan[len(plan)-1].file
	if len(newer) == 0 {
		// Only late files: the plan must reach v's TXID through v's history.
		if last.Info.MaxTXID != v.txid || !sameState(last, v.last) {
			return nil
		}
		last = v.last
	} else {
		// The first newer file must start right after a file v applied, in
		// the same state (post-apply checksum) that file left the database.
		first := newer[0].file
		if first.Info.MinTXID == 1 {
			return nil
		}
		i := slices.IndexFunc(v.plan, func(f *File) bool { return f.Info.MaxTXID == first.Info.MinTXID-1 })
		if i < 0 || checkContinues(v.plan[i], first) != nil {
			return nil
		}
		for j := 1; j < len(newer); j++ {
			if checkContinues(newer[j-1].file, newer[j].file) != nil {
				return nil
			}
		}
	}

	b := newMapBuilder(v.pages)
	for _, fx := range late {
		applyLate(b, fx, listed, moves)
	}
	for _, fx := range newer {
		applyNewer(b, fx)
	}
	return finish(b, v.pageSize, last, files(plan))
}

// applyNewer applies a file whose MaxTXID is above every file applied so
// far: pages above its commit are gone (a shrink), and each of its pages
// is the newest version.
func applyNewer(b *mapBuilder, fx *fileIndex) {
	b.truncate(fx.file.Header.Commit)
	off := int64(ltx.HeaderSize)
	for i, pgno := range fx.pgnos {
		b.set(pgno, fx.file, off, fx.sizes[i])
		off += int64(fx.sizes[i])
	}
}

// applyLate applies a file whose MaxTXID is at or below what is applied
// already. The map is then exact, so the file can only repoint pages: where
// the entry's file reaches no further than this one, the file holds the
// same page version (the newest write at or below the entry's MaxTXID lies
// in this file's range). It repoints only entries whose file vanished from
// the listing (retention), and records each such move; an entry whose file
// still exists keeps its file, and so its place in the page cache. A page
// without an entry was never written or died in a shrink, and stays so; an
// entry from a newer file wins (rule 3).
func applyLate(b *mapBuilder, fx *fileIndex, listed listing, moves *[]Move) {
	off := int64(ltx.HeaderSize)
	for i, pgno := range fx.pgnos {
		if e, ok := b.entry(pgno); ok && e.File != fx.file && e.File.Info.MaxTXID <= fx.file.Info.MaxTXID && !listed.has(e.File) {
			to := Entry{File: fx.file, Offset: off, Size: int64(fx.sizes[i])}
			b.set(pgno, to.File, to.Offset, fx.sizes[i])
			*moves = append(*moves, Move{Pgno: pgno, From: e, To: to})
		}
		off += int64(fx.sizes[i])
	}
}

func finish(b *mapBuilder, pageSize uint32, last *File, plan []*File) *Version {
	return &Version{
		txid:     last.Info.MaxTXID,
		pageSize: pageSize,
		commit:   last.Header.Commit,
		last:     last,
		pages:    b.build(),
		plan:     plan,
		seq:      versionSeq.Add(1),
	}
}

// files returns the files of fetched page indexes, in the same order.
func files(fxs []*fileIndex) []*File {
	out := make([]*File, len(fxs))
	for i, fx := range fxs {
		out[i] = fx.file
	}
	return out
}

func checkPageSizes(pageSize uint32, fxs []*fileIndex) error {
	for _, fx := range fxs {
		if ps := fx.file.Header.PageSize; ps != pageSize {
			return fmt.Errorf("%s: page size %d differs from the %d bytes of the files before it", fx.file.Name(), ps, pageSize)
		}
	}
	return nil
}

// checkContinues verifies, where the files say enough, that next applies
// to the database exactly as prev left it: next starts right after prev
// and, both carrying checksums, next's pre-apply checksum is prev's
// post-apply checksum. Files that overlap cannot be compared this way.
func checkContinues(prev, next *File) error {
	if next.Info.MinTXID != prev.Info.MaxTXID+1 {
		if next.Info.MinTXID > prev.Info.MaxTXID+1 {
			return fmt.Errorf("%s does not continue %s: TXIDs %s..%s are missing", next.Name(), prev.Name(), prev.Info.MaxTXID+1, next.Info.MinTXID-1)
		}
		return nil
	}
	if prev.Header.NoChecksum() || next.Header.NoChecksum() {
		return nil
	}
	if next.Header.PreApplyChecksum != prev.Trailer.PostApplyChecksum {
		return fmt.Errorf("%s does not continue %s: pre-apply checksum %s, but %s leaves the database at %s", next.Name(), prev.Name(), next.Header.PreApplyChecksum, prev.Name(), prev.Trailer.PostApplyChecksum)
	}
	return nil
}

// sameState reports whether two files leave the database in the same state
// (same TXID and, where both have one, the same post-apply checksum).
func sameState(a, b *File) bool {
	if a.Info.MaxTXID != b.Info.MaxTXID {
		return false
	}
	if a.Header.NoChecksum() || b.Header.NoChecksum() {
		return true
	}
	return a.Trailer.PostApplyChecksum == b.Trailer.PostApplyChecksum
}
