// Package fuzzseed writes the checked-in seed corpora of the module's fuzz
// targets (testdata/fuzz/FuzzXxx/ beside each target), so that they are
// made by code, never by hand: run a package's fuzz target as a test with
// -fuzzseed.write, e.g.
//
//	go test -run '^FuzzFileIndex$' -fuzzseed.write ./index
//
// and commit what it writes. Without the flag nothing is written, and the
// corpus runs as ordinary test cases in every `go test`.
package fuzzseed
