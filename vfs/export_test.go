package vfs

import "testing"

// attachTuned is Attach with the cold-path features of tune switched off
// (benchmarks compare them; tests check what each one does).
func attachTuned(name string, opts Options, tune coldTuning) error {
	coldTunings.Store(name, tune)
	defer coldTunings.Delete(name)
	return Attach(name, opts)
}

// attachTunedT is attach (Detach at the end of the test) with tune.
func attachTunedT(tb testing.TB, name string, opts Options, tune coldTuning) {
	tb.Helper()
	if err := attachTuned(name, opts, tune); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Detach(name) })
}
