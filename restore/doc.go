// Package restore rebuilds a replica's database into a local file, at its
// newest TXID, at a TXID or at a time: it plans with package plan, streams
// the files through package compact, checks the result (rolling checksum,
// PRAGMA integrity_check) and only then puts it in place.
package restore
