// Package file is the local-directory storage backend, the embedded default:
// a replica is a directory laid out as Litestream v0.5 lays it out
// (<root>/ltx/<level>/<minTXID>-<maxTXID>.ltx). Files are written to a temp
// file, fsynced, renamed into place and the directory fsynced, so a file is
// either absent or whole. Importing the package registers the "file" scheme
// (and bare paths) with storage.Open.
package file
