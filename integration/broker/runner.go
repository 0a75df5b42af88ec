package broker

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// maxCtlOutput bounds what is kept of one rabbitmqctl run's output; more is
// dropped (a connection listing of thousands of connections fits).
const maxCtlOutput = 8 << 20

// ctlWaitDelay bounds how long a killed rabbitmqctl may keep its output pipes
// open (the Erlang VM's helper processes can hold them).
const ctlWaitDelay = 2 * time.Second

// runner runs one rabbitmqctl command against one node.
type runner interface {
	// run returns the command's standard output and, separately, what it
	// printed on standard error, and a non-nil error if it failed.
	run(ctx context.Context, args []string) (stdout, stderr string, err error)
	// String names the runner for logs, for example "rabbitmqctl -n NODE".
	String() string
}

// execRunner runs a local rabbitmqctl script.
type execRunner struct {
	path string   // the rabbitmqctl script under the scripts dir, not a sudo wrapper
	node string   // the -n argument; "" means rabbitmqctl's default node
	env  []string // nil means the caller's environment
	root string   // a Debian root path is in (chroot.go); "" means the host
}

func (r execRunner) String() string {
	if r.node == "" {
		return r.path
	}
	return r.path + " -n " + r.node
}

func (r execRunner) run(ctx context.Context, args []string) (string, string, error) {
	full := make([]string, 0, len(args)+3)
	if r.node != "" {
		full = append(full, "-n", r.node)
	}
	full = append(full, "-q")
	full = append(full, args...)
	cmd := rootCommand(ctx, r.root, r.path, full...)
	cmd.Env = r.env
	cmd.WaitDelay = ctlWaitDelay
	// Dies with the test binary: a rabbitmqctl outliving it would find the
	// node's epmd gone and start an epmd daemon that nobody stops.
	setProcAttr(cmd)
	var stdout, stderr cappedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.String(), stderr.String(), err
}

// cappedBuffer keeps the first maxCtlOutput bytes written to it and drops
// the rest, so a runaway command cannot grow memory without bound.
type cappedBuffer struct {
	buf     bytes.Buffer
	dropped int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	room := maxCtlOutput - c.buf.Len()
	if room < len(p) {
		if room > 0 {
			c.buf.Write(p[:room])
		}
		c.dropped += len(p) - max(room, 0)
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (c *cappedBuffer) String() string {
	if c.dropped > 0 {
		return fmt.Sprintf("%s\n[%d bytes dropped]", c.buf.String(), c.dropped)
	}
	return c.buf.String()
}
