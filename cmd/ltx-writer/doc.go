// Command ltx-writer replicates a SQLite database into LTX files and reads
// them back: replicate (stream a live database into a replica), restore
// (rebuild a database file at a TXID or time), ls (the replica's files and
// manifest), query (SQL against a replica through the ltx VFS) and demo
// (the whole job end to end on a local directory). replicate reads its own
// config format or Litestream v0.5's unchanged (litestream*.go). Run it
// with -h, or a subcommand with -h, for its flags.
package main
