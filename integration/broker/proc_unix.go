//go:build unix && !linux

package broker

import (
	"os/exec"
	"syscall"
)

// setProcAttr has no parent-death signal outside Linux, so there a node
// outlives a test binary that crashes before Close.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }
