package reliability

import "syscall"

// childSysProcAttr has the kernel kill a child writer when the test binary
// dies, so that a failed or killed test leaves no writer behind.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
