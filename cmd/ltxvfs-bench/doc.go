// Command ltxvfs-bench measures the ltx VFS the way an operator would meet
// it: it builds (or takes, with -db) a SQLite database of a given size,
// replicates it with the writer into a replica with a realistic history (a
// full first file, a stream of small L0 files, L1 and L2 compactions, a
// snapshot, more L0 files after it), and reads it through the VFS behind a
// storage wrapper that injects first-byte latency and bandwidth (or against
// a real replica URL): cold open, cold point lookups by rowid and by a
// secondary index, warm lookups against the same file through the default
// VFS, range and full scans, time travel, follower lag, page-fetch latency
// and a full restore for comparison.
//
// It prints an aligned table, and with -json and -svg writes the same
// figures as JSON and the latency distributions as an SVG chart. Run it
// with -h for the flags; README.md ("Benchmark") defines every figure.
package main
