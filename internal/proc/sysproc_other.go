//go:build !linux

package proc

import "syscall"

// sysProcAttr: only Linux can tie the server's life to its parent's;
// elsewhere a crashed parent may leave its server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
