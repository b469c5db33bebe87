package testbin

import "syscall"

// sysProcAttr has the kernel kill the server when the test binary dies, so
// that a crashed or killed test leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
