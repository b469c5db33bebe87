// Package childwriter runs a writer (writer.Replicator) in a child
// process for tests that must treat it as a process: kill it with SIGKILL
// mid-upload, stop it with SIGSTOP past its lease and wake it with
// SIGCONT, or run a second writer beside it as another host would.
//
// The child is the test binary itself, started again with a Config in its
// environment; the package's TestMain hands control to it first:
//
//	func TestMain(m *testing.M) {
//		childwriter.Main()
//		os.Exit(m.Run())
//	}
//
// Start starts one and returns a Child: what it printed ("starting" when
// the test's code runs, "ready" once the writer started, one line per
// LTX file written with Config.Record), its log, how it exited. On Linux
// the kernel kills the child when the test binary dies.
package childwriter
