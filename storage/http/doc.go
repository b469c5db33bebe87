// Package httpstore (import path storage/http) is the read-only replica
// backend for web servers: a replica that a writer published into a
// directory a web server serves (nginx, any static host), or into an S3
// bucket read through its public or CDN URL, is read with plain GETs:
//
//	https://host/path?bearer-token-env=TOKEN&ca-file=/etc/ssl/my-ca.pem
//
// The layout is the file backend's: LTX files at
// <path>/ltx/<level>/<min>-<max>.ltx, read with ranged GETs, and objects
// (the manifest, hints) at <path>/ltx/ltxvfs/<name>, read whole with
// conditional GETs (If-None-Match, or If-Modified-Since where the server
// gives no ETag). With layout=s3 it is the s3 backend's, the URL's path
// being the prefix: a bucket read through its public or CDN URL. A web server cannot list: LTXFiles and ListObjects fail
// with ErrNotListable, and a reader follows the replica through its
// manifest. Writes and deletes fail with ErrReadOnly.
//
// Importing the package registers the "http" and "https" schemes with
// storage.Open. Header values and tokens come from environment variables
// the URL names (see storage.HTTPParams) and never appear in errors, logs
// or String.
package httpstore
