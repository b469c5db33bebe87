//go:build !linux

package testbin

import "syscall"

// sysProcAttr: only Linux can tie the server's life to the test binary's;
// elsewhere a crashed test binary may leave its server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
