// Package s3test runs real S3 servers on loopback for tests, and hands out
// fresh buckets and replica clients on them.
//
// Two kinds of server: versitygw, the default (Shared, Start), and MinIO
// (SharedKind, StartKind), where S3-compatible servers differ in what
// replication relies on (conditional writes, ETags, error codes,
// listing). ForEach runs a test as a subtest on each.
//
// The binaries are found, installed (`go install`, cached in the user
// cache directory under a file lock) and run with internal/testbin: see
// Binary for where each comes from. When a server cannot be installed or
// started the test is skipped, unless CI is set, where it fails: nothing
// may be skipped in CI.
//
// One server of each kind serves a whole test package, started on first
// use; stop them from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }
package s3test
