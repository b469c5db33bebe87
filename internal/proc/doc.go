// Package proc runs the helper servers that tests and the benchmark
// harness start on loopback (S3 servers, nginx, Toxiproxy): a Process is
// tied to the life of the process that started it (on Linux the kernel
// kills it when its parent dies) and keeps its output for errors;
// OnFreePorts and FreePort pick loopback ports.
//
// It never imports testing, so that a shipped command (cmd/ltxvfs-bench)
// may use it; package testbin builds the test-only parts on it.
package proc
