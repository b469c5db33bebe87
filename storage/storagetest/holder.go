package storagetest

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/ltxvfs/ltxvfs/lease"
)

// ExitedPredecessor describes a writer of the same database as me (see
// lease.ThisProcess) that ran on this machine and has exited, as a writer
// killed with SIGKILL leaves its lease: a process is started and waited
// for, and its PID is the predecessor's. It skips the test where me carries
// no kernel boot or PID namespace (not Linux): no predecessor can be proven
// exited there.
func ExitedPredecessor(tb testing.TB, me lease.Holder) lease.Holder {
	tb.Helper()
	if me.BootID == "" || me.PIDNamespace == "" {
		tb.Skip("no kernel boot ID or PID namespace on this system")
	}
	for range 10 {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			tb.Fatalf("start a process to leave a PID behind: %v", err)
		}
		pid := cmd.Process.Pid
		// Reused at once by another process? Then try another.
		p, err := os.FindProcess(pid)
		if err == nil && errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone) {
			dead := me
			dead.Owner = "ltx-writer killed with SIGKILL"
			dead.PID = pid
			return dead
		}
	}
	tb.Fatal("every PID of an exited process was reused at once")
	return lease.Holder{}
}
