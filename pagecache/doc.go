// Package pagecache owns the decoded pages of a replica held in memory: a
// byte-bounded LRU (golang-lru/v2) keyed by an immutable identity (file,
// page number), so entries never need invalidation, only eviction; one fetch
// in flight per page; adjacent misses coalesced into one ranged read.
package pagecache
