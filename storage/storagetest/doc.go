// Package storagetest holds what tests of storage clients share, and only
// tests: the contract every backend passes (RunContract), an in-memory
// database that produces consistent LTX files (DB), and helpers that fail
// a test (History, MustWrite, ReadRange, ReadFile...). It imports testing:
// no shipped binary links it (the wrappers a benchmark needs are in
// storage/wrap, the in-memory client in storage/mem).
package storagetest
