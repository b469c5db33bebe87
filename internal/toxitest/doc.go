// Package toxitest puts real network faults between tests and a server:
// it runs Toxiproxy (a TCP proxy whose connections can be delayed,
// throttled, stalled, cut and reset) on loopback and drives it over its
// HTTP API, and adds what a TCP proxy cannot do, S3 503 SlowDown bursts,
// with Throttle, an HTTP reverse proxy.
//
// The toxiproxy-server binary is found as $TOXIPROXY_SERVER, on PATH, or in
// the user cache directory (ltxvfs/toxiproxy-server-v2.5.0), where it is
// built with `go install` when missing (see internal/testbin). When it
// cannot be installed or started the test is skipped, unless CI is set,
// where it fails.
//
// A test chains them as a client would meet the faults:
//
//	client -> Toxiproxy (TCP faults) -> Throttle (503s) -> S3 server
//
// so that a reset or a stall reaches the client's own connection, and a
// 503 comes back through the same faulty network.
package toxitest
