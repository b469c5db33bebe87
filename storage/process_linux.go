//go:build linux

package storage

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// bootID names this kernel boot: a PID names a process only within one.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pidNamespace names this process's PID namespace, in which the PIDs it
// sees and signals are numbered.
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}

// processGone reports whether no process has the PID pid in this PID
// namespace: kill(pid, 0) fails with ESRCH. EPERM means a process exists
// that this one may not signal.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
