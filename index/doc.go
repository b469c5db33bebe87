// Package index owns the TXID page index of a replica: the restore plan
// (which files rebuild the database at TXID T), immutable versions that map
// each page number to the file, offset and size of its newest version at or
// below T, and the lookup from a timestamp to a TXID. The frames it reads
// along with page indexes (small files whole, the head of larger ones, and
// the checked hint objects of snapshots and compactions) go to a FrameSink.
package index
