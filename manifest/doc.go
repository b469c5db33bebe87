// Package manifest owns what a writer publishes beside a replica's LTX
// files for its readers, in the replica's object folder (see
// storage.ObjectDir), where Litestream never looks: the hint of each file
// (a checksum of every page frame, and copies of its B-tree interior
// pages) and, next, the manifest that names a replica's files. It encodes
// them and checks them; a reader never trusts one blindly, and a replica
// without them (Litestream's) is read from its LTX files alone.
package manifest
