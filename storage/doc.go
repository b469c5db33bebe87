// Package storage owns the replica client: the one interface through which
// the writer puts LTX files into object storage and the VFS reads them back,
// the on-storage layout (compatible with Litestream v0.5), the objects ltxvfs
// keeps beside the LTX files (ObjectDir: read and written whole, with ETags
// and conditional requests), and the parsing of replica URLs into clients.
// A backend that lists every level with one request implements AllLister,
// which ListAll uses (readers list a replica without a manifest so), else
// it lists each level.
//
// Backends live in subpackages (storage/file, storage/s3) and register their
// URL schemes with Register when imported; storage/storagetest holds the
// contract every backend passes, storage/wrap the wrappers that count
// requests and inject latency and faults, storage/mem a replica in memory.
// What is stored beside the LTX files for readers is package manifest's;
// the writer's lease, package lease's.
package storage
