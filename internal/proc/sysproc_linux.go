package proc

import "syscall"

// sysProcAttr has the kernel kill the server when the process that started
// it dies, so that a crashed or killed test or benchmark leaves no server
// behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
