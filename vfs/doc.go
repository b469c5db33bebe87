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
// The cache budget is pagecache=, not cache=: SQLite owns the cache URI
// parameter (shared|private) and rejects any other value before a VFS sees
// it.
package vfs
