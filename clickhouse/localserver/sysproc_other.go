//go:build !linux

package localserver

import "syscall"

// sysProcAttr puts the server in its own process group, so Stop reaches every process it forks.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
