package broker

import (
	"fmt"
	"os/exec"
	"time"
)

// proc is a child process Find started, with an event for its exit.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

// startProc starts cmd in a process group of its own (so a terminal's Ctrl-C
// reaches the test binary, which then stops the node cleanly, rather than the
// node directly) that is signalled if the test binary dies first.
func startProc(cmd *exec.Cmd) (*proc, error) {
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the process to exit.
func (p *proc) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// kill sends SIGKILL to the process's whole group and waits up to d for the
// process to exit. The group is signalled only while the leader has not been
// reaped, so its id cannot belong to anyone else.
func (p *proc) kill(d time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := killGroup(p.cmd.Process.Pid); err != nil && !p.exited() {
		return fmt.Errorf("broker: killing process group %d: %w", p.cmd.Process.Pid, err)
	}
	if !p.waitExit(d) {
		return fmt.Errorf("broker: process %d did not exit %v after SIGKILL", p.cmd.Process.Pid, d)
	}
	return nil
}
