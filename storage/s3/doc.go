// Package s3 is the replica backend for Amazon S3 and S3-compatible object
// stores (MinIO, Cloudflare R2, Tigris, versitygw), on aws-sdk-go-v2.
//
// Importing it registers the "s3" scheme with storage.Open:
//
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true
//
// Objects are laid out exactly as Litestream v0.5 lays them out
// (storage.ObjectKey), each carrying its LTX header timestamp in the
// litestream-timestamp metadata. Credentials come from the standard AWS chain
// (environment, shared config and profiles, container and instance roles)
// unless Options gives a provider; they never appear in errors or String.
package s3
