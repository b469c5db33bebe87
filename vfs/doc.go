// Package vfs is the read-only SQLite VFS "ltx" for github.com/ncruces/go-sqlite3.
// Importing it registers the VFS; a database opened with
//
//	file:app.db?vfs=ltx&replica=URL[&txid=N|&time=T][&poll=1s][&pagecache=64MiB]
//
// reads its pages on demand from the LTX files of the replica, following the
// newest TXID or pinned at one. Each read transaction sees exactly one TXID.
// The connections of a process to one replica share its client, TXID index,
// page cache and poller; Attach binds a name to a replica in code.
//
// The URI parameters it owns (the README's table says more):
//
//	replica=URL         where the LTX files are (URL-escaped)
//	txid=N, time=T      pin at a TXID, or at the newest one committed by T
//	poll=1s             how often a follower looks for a new TXID
//	pagecache=64MiB     the replica's page cache budget
//	diskcache=DIR       keep pages and hints in files under DIR across restarts
//	diskcache_size=1GiB the bound of that disk tier
//	max_requests=N      a statement needing more storage requests fails
//	max_bytes=SIZE      a statement needing to read more fails
//	wait=TOKEN          the open waits for a read-your-writes token's commit
//	wait_timeout=10s    how long wait= and PRAGMA ltx_wait wait at most
//
// The PRAGMAs ltx_txid, ltx_time, ltx_wait and ltx_stats travel in time,
// wait for a token and report what a connection's statements cost. A bad
// value is an error naming the parameter and its value, redacted; a
// misspelt parameter of ours (txdi=) is refused rather than ignored.
//
// Cold reads go ahead of SQLite where its reads show a pattern: in page
// order (readahead.go), in a B-tree's key order (keyorder.go), a join's
// lookups from the keys on its outer rows (join.go, record.go), a small
// index whose lookups miss (leaflevel.go), and down the B-trees of a
// replica without hints (interior.go, the walk); each is bounded by the
// cache and the statement's budget and ends with its query.
//
// The cache budget is pagecache=, not cache=: SQLite owns the cache URI
// parameter (shared|private) and rejects any other value before a VFS sees
// it.
package vfs
