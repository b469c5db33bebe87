// Package plan owns the restore plan of a replica: which of its LTX files
// rebuild the database at a TXID (a snapshot, then the files that extend
// it, fewest first), the range of TXIDs the retained files can rebuild,
// and the TXID committed at or before a time. It works on file listings
// alone: no I/O.
package plan
