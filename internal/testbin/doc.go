// Package testbin finds, installs and runs the server binaries that tests
// run against: S3 servers (versitygw, MinIO) and the Toxiproxy fault
// proxy.
//
// A Tool is found as the binary its environment variable names, on PATH,
// or in the user cache directory (ltxvfs/<name>-<version>/<name>), where it
// is built with `go install` when missing. Test binaries of several
// packages run at once: the first takes a file lock and builds, the others
// wait and find the binary done.
//
// A Process is a server started for tests on loopback: the kernel kills it
// when the test binary dies (on Linux), and its output is kept for errors.
// Unavailable skips a test whose server cannot be had, or fails it when CI
// is set: nothing may be skipped in CI.
package testbin
