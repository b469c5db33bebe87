// Package wrap holds wrappers around a storage.Client that observe or
// disturb it: Counting counts requests and bytes (and requests in flight),
// Faulty adds latency, bandwidth limits and faults (errors, ambiguous
// failures, truncated and short bodies) deterministically from a seed.
// Tests and the benchmark harness use them; it does not import testing.
package wrap
