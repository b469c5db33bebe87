// Package storagetest holds what tests of storage clients share: the
// contract every backend passes (RunContract), an in-memory database that
// produces consistent LTX files (DB), a wrapper that counts requests and
// bytes (Counting) and one that injects latency and faults deterministically
// from a seed (Faulty).
package storagetest
