// Package pagecache owns the decoded pages of a replica held in memory: a
// byte-bounded segmented LRU (golang-lru/v2) keyed by an immutable identity
// (file, page number), so entries never need invalidation, only eviction,
// and a page read once (a scan, read ahead or not) never pushes out pages
// read again; one fetch in flight per page; adjacent misses coalesced into one ranged read;
// reads ahead in the background, waited for rather than repeated; and an
// optional disk tier that outlives the process, holding the pages queries
// read (those read ahead, once a query read them) and serving reads ahead
// too.
package pagecache
