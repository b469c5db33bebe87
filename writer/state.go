package writer

import (
	"time"

	"github.com/superfly/ltx"
)

// state is where replication stands: the last TXID in the replica, the
// database it describes (size, rolling checksum, per-page checksums) and the
// WAL position it was copied up to. It changes only when an upload
// succeeds.
type state struct {
	txid      ltx.TXID
	post      ltx.Checksum // post-apply checksum of txid; 0 if the replica does not track checksums
	commit    uint32       // database size in pages at txid
	timestamp time.Time    // header timestamp of the file that ended at txid

	// sums[pgno-1] is the checksum of each page at txid, sum their XOR;
	// nil until the database has been read whole once since opening.
	sums []ltx.Checksum
	sum  ltx.Checksum

	// resumed is set once the replica's position has been matched with
	// the database (or a snapshot has replaced it).
	resumed bool

	// pos is the end of what has been copied in the WAL generation pos
	// names, if hasGen; gen holds the newest copied frame of each page of
	// that generation.
	pos    walPos
	hasGen bool
	gen    map[uint32]frameRef
}

// walGuard is what the read transaction guarantees. It is taken, under the
// write lock, when the read transaction begins: anchor is the end of the
// WAL then (hasAnchor false if the WAL was empty).
//
// While the read transaction is held SQLite can restart the WAL at most
// once, and only if its read mark was slot 0 (the WAL was fully backfilled
// when it began) and nothing was appended since: the restarted generation
// ends exactly at anchor. So a change of generation is clean, nothing lost,
// if what was copied had reached anchor, and only the first one is.
type walGuard struct {
	held        bool
	valid       bool // false: the read transaction began without the write lock
	hasAnchor   bool
	anchor      walPos
	restartSeen bool
	// fresh: the next generation to appear starts with nothing missed (the
	// WAL was empty when the read transaction began, or the generation
	// before was copied whole and then truncated).
	fresh bool
}

// mayRestart reports whether the generation st is in may end now with
// nothing lost: the guard holds, no restart was seen under it, and what was
// copied reaches the anchor.
func (g *walGuard) mayRestart(st *state) bool {
	return g.held && g.valid && !g.restartSeen && g.hasAnchor && st.hasGen &&
		st.pos.salt1 == g.anchor.salt1 && st.pos.salt2 == g.anchor.salt2 && st.pos.offset >= g.anchor.offset
}

// pageChecksums sets the per-page checksums from a whole read of the
// database.
func (st *state) setSums(sums []ltx.Checksum) {
	st.sums = sums
	st.sum = 0
	for _, c := range sums {
		st.sum ^= c
	}
}

// checksum is the rolling checksum of the state in st.sums.
func (st *state) checksum() ltx.Checksum { return ltx.ChecksumFlag | st.sum }
