//go:build !unix

package broker

import (
	"os"
	"os/exec"
)

func setProcAttr(*exec.Cmd) {}

// killGroup kills only the leader where process groups do not exist.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
