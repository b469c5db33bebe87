// Package index owns the TXID page index of a replica: the restore plan
// (which files rebuild the database at TXID T), immutable versions that map
// each page number to the file, offset and size of its newest version at or
// below T, and the lookup from a timestamp to a TXID.
package index
