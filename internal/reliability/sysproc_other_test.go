//go:build !linux

package reliability

import "syscall"

// childSysProcAttr: only Linux can tie a child's life to the test binary's.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
