// Package s3test runs a real S3 server, versitygw, on loopback for tests,
// and hands out fresh buckets and replica clients on it.
//
// The server binary is found as $VERSITYGW, as versitygw on PATH, or in the
// user cache directory (ltxvfs/versitygw-v1.8.0), where it is installed with
// `go install` when missing; concurrent test processes take turns with a
// file lock. When the server cannot be installed or started the test is
// skipped, unless CI is set, where it fails: nothing may be skipped in CI.
//
// One server serves a whole test package; stop it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }
package s3test
