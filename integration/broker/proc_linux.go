package broker

import (
	"os/exec"
	"syscall"
)

func setProcAttr(cmd *exec.Cmd) {
	// Pdeathsig is tied to the OS thread that forked the child; the Go
	// runtime keeps its threads for the life of the process unless a
	// goroutine locked to one exits, which this package never does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func killGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGKILL) }
