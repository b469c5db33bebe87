// Package lease owns the writer's lease on a replica: one writer per
// replica. A backend that can grant one implements Leaser (storage/file
// with flock, storage/s3 with conditional PUTs); Holder says who holds it,
// and lets a writer restarted after a crash on the same machine prove
// that an unexpired lease is its dead predecessor's (reading /proc on
// Linux).
package lease
