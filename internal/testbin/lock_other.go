//go:build !unix

package testbin

// lockFile does not lock where flock is missing: two test processes may then
// both install a tool, each to a temp name renamed into place, which
// wastes time but leaves a whole binary.
func LockFile(string) (unlock func(), err error) { return func() {}, nil }
