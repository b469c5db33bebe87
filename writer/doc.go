// Package writer replicates a live SQLite database into a replica and
// restores it from one.
//
// A Replicator puts the database in WAL mode, holds a long-running read
// transaction so that no checkpoint can reset the WAL past what it has
// copied, and every sync interval copies the WAL's committed transactions
// into one L0 LTX file at the next TXID. It checkpoints on its own, through
// one path that keeps the WAL position (checkpoint.go), compacts L0 into
// L1, L2, ... with the ltx Compactor, writes snapshots to level 9, and
// applies retention. After a restart or a crash it resumes at the next TXID;
// when it cannot tie the WAL to the replica it compares the database with
// the replica's checksum (from the newest file, or, when files carry none,
// from the position file <db>-ltx it keeps beside the database, see
// SidecarSuffix) and, if they differ, writes a snapshot rather than guess.
//
// Restore rebuilds a database file from a replica at any retained TXID or
// time, through the same listing and planning code the VFS uses.
package writer
