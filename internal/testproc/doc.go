// Package testproc runs the real servers that tests start (versitygw,
// nginx) as child processes: it finds free loopback ports, ties a child's
// life to the test binary's, collects its output, serializes installs
// between test processes with a file lock, and skips a test whose server
// is unavailable, or fails it when CI is set, where nothing may be skipped.
package testproc
