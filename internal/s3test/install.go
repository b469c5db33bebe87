package s3test

import "github.com/ltxvfs/ltxvfs/internal/testbin"

// Kind is an S3 server implementation the tests run against.
type Kind string

const (
	// Versitygw is the default test server: small, quick to build and to
	// start (~50 ms).
	Versitygw Kind = "versitygw"
	// MinIO is the second server, where S3-compatible servers differ
	// (conditional writes, ETags, error codes, listing). It takes minutes
	// to build and a second or two to start.
	//
	// What differs from versitygw, as seen by these tests: both honour
	// If-None-Match: * and If-Match on PUT (412, or 404 NoSuchKey for
	// If-Match on a missing key) and answer a conditional GET with 304;
	// both use the MD5 of the content as ETag, so a PUT of the bytes an
	// object already holds keeps its ETag and a second If-Match with it
	// still succeeds. MinIO ignores If-Match on DeleteObject (it deletes
	// whatever the ETag), where versitygw answers 412: nothing may rely
	// on conditional deletes. An unknown access key is 403
	// InvalidAccessKeyId on MinIO, 404 XAdminUserNotFound on versitygw.
	// Both drop a key's leading slash.
	MinIO Kind = "minio"
)

// Kinds are the servers ForEach runs a test on, in order.
var Kinds = []Kind{Versitygw, MinIO}

// Version is the versitygw release the tests run against.
const Version = "v1.8.0"

// MinIOVersion is the MinIO build the tests run against. MinIO tags
// releases by date (RELEASE.2026-...), not semver, so the module proxy
// serves it as a pseudo-version; this is what @latest resolved to when it
// was pinned.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

var tools = map[Kind]testbin.Tool{
	Versitygw: {Name: "versitygw", Env: "VERSITYGW", Package: "github.com/versity/versitygw/cmd/versitygw", Version: Version},
	MinIO:     {Name: "minio", Env: "MINIO_BINARY", Package: "github.com/minio/minio", Version: MinIOVersion},
}

// Binary returns the path of a server's binary: $VERSITYGW or
// $MINIO_BINARY if set, the binary on PATH, or the cached build, installed
// first if missing.
func Binary(kind Kind) (string, error) { return tools[kind].Path() }
