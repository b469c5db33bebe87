//go:build linux

package lease

import (
	"errors"
	"os"
	"strconv"
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

// processGone reports whether the process with the PID pid in this PID
// namespace has exited: kill(pid, 0) fails with ESRCH, or the process is a
// zombie (exited, its resources and sockets gone, but not yet reaped by its
// parent: a container's init may take its time). EPERM means a process
// exists that this one may not signal.
func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return true
	}
	return err == nil && zombie(pid)
}

// zombie reports whether /proc shows pid as a zombie, provided that /proc
// is this PID namespace's: it shows this process under its own PID.
func zombie(pid int) bool {
	self, _, ok := procStat("self")
	if !ok || self != strconv.Itoa(os.Getpid()) {
		return false
	}
	got, state, ok := procStat(strconv.Itoa(pid))
	return ok && got == strconv.Itoa(pid) && (state == "Z" || state == "X")
}

// procStat reads the PID and state fields of /proc/<name>/stat:
// "<pid> (<comm>) <state> ...", where comm may hold anything but ends at
// the last ')'.
func procStat(name string) (pid, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + name + "/stat")
	if err != nil {
		return "", "", false
	}
	s := string(b)
	pid, _, _ = strings.Cut(s, " ")
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) == 0 {
		return "", "", false
	}
	return pid, fields[0], true
}
