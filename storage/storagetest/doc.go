// Package storagetest holds what tests of storage clients share: the
// contract every backend passes (RunContract), an in-memory database that
// produces consistent LTX files (DB), a wrapper that counts requests and
// bytes (Counting), one that injects latency and faults deterministically
// from a seed (Faulty), and a replica held in memory (Mem).
package storagetest
