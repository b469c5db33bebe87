// Package reliability holds the suites that try to break replication as a
// whole, writer and readers together, and hold it to its promises: no
// acknowledged commit lost and no wrong row served.
//
//   - crash loop (crash_test.go): the writer in a child process under a
//     write load, killed with SIGKILL at seeded random moments; after each
//     restart the TXIDs are contiguous and every point the replica reached
//     restores, by TXID and by time, to exactly the source state then;
//   - consistency while following (follow_test.go): a bank-transfer load on
//     the primary, the writer syncing, compacting, snapshotting and pruning,
//     and many readers through the ltx VFS checking the invariant in every
//     read transaction, some pinned at old TXIDs while retention runs;
//   - storage faults (faults_test.go): readers and the writer through
//     wrap.Faulty, every successful read compared with the state at
//     the TXID the reader reports.
//
// The package has no code of its own, only tests. The default settings
// keep the whole package under two minutes with -race on two cores; the
// flags -crash-iterations, -follow-duration and -fault-duration (see
// main_test.go) run the long versions, and -reliability-seed replays a run.
package reliability
