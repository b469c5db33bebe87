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
//     the TXID the reader reports;
//   - network faults (network_*_test.go): the same promises with real
//     faults on the wire, Toxiproxy between the code and a real S3 server
//     (versitygw) and 503 SlowDown bursts, one kind after another, with
//     outcomes reported by kind;
//   - a long follower run (longrun_test.go): heap and goroutines flat
//     after warm-up while a follower reads a replica at 10 syncs a second;
//   - a stale writer fenced (fence_test.go): a writer process stopped with
//     SIGSTOP past its lease while another takes over, then woken, on a
//     directory, versitygw and MinIO: no file written over or holding two
//     contents, the stale writer exits with one line, and every TXID
//     holds the primary's rows;
//   - bad storage mid-run (bucket_test.go, credentials_test.go): the
//     bucket deleted under a writer and readers and created again empty
//     (the writer retries while it is missing, then stops with
//     writer.ErrReplicaLost; restarted, it begins the replica again and
//     nothing is lost), and credentials that expire and come back refused,
//     then not at all, then good (named errors, no secret shown, the
//     writer catches up). Clock skew is tested with the lease, in
//     storage/s3.
//
// The package has no code of its own, only tests. The default settings
// keep the whole package within a few minutes with -race on two cores; the
// flags -crash-iterations, -follow-duration, -fault-duration,
// -network-fault-duration and -long-follow (see main_test.go and
// longrun_test.go) run the long versions, and -reliability-seed replays a
// run.
package reliability
