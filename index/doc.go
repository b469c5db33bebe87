// Package index owns the TXID page index of a replica: immutable versions
// that map each page number to the file, offset and size of its newest
// version at or below a TXID, built from the files of a restore plan
// (package plan) that it learns from the replica's manifest or, without
// one, from a listing; and the checks that let every frame read be
// verified (file checksums, hints). The frames it reads along with page
// indexes (small files whole, the head of larger ones, the frames hints
// copy) go to a FrameSink.
package index
