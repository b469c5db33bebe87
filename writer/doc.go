// Package writer replicates a live SQLite database (WAL mode) into LTX files:
// WAL frames of committed transactions become L0 files, which are compacted
// into higher levels and snapshots, pruned by retention, and restored into a
// database file. The layout and the approach are Litestream v0.5's.
package writer
