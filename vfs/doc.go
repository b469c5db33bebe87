// Package vfs is the read-only SQLite VFS "ltx" for github.com/ncruces/go-sqlite3.
// Importing it registers the VFS; a database opened with
//
//	file:app.db?vfs=ltx&replica=URL[&txid=N|&time=T][&poll=1s][&cache=64MiB]
//
// reads its pages on demand from the LTX files of the replica, following the
// newest TXID or pinned at one. Each read transaction sees exactly one TXID.
package vfs
