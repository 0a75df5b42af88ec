package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// benchChildExitTimeout bounds how long a worker may take to exit after its stdin
// is closed before it is killed.
const benchChildExitTimeout = 15 * time.Second

// benchMaxChildLog bounds the worker output kept for error messages.
const benchMaxChildLog = 8 << 10

// benchChild is one worker process run by the coordinator.
type benchChild struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan benchMsg    // protocol lines; closed when stdout ends
	log   *benchTailBuffer // stderr and stray stdout lines
	exit  chan struct{}    // closed once the process has exited and been reaped
	err   error            // Wait's result, written before exit closes
	usage benchUsage       // the whole process's rusage, written before exit closes
	hasRU bool
}

// startBenchChild runs "exe bench worker cfg..." as its own process. Its
// stderr is kept for error messages, and also copied to echo if not nil.
func startBenchChild(exe string, cfg workerConfig, echo io.Writer) (*benchChild, error) {
	args := append([]string{"bench", "worker"}, cfg.args()...)
	cmd := exec.Command(exe, args...)
	c := &benchChild{
		name: cfg.Contender + "/" + cfg.Scenario,
		cmd:  cmd,
		msgs: make(chan benchMsg, 256),
		log:  &benchTailBuffer{max: benchMaxChildLog},
		exit: make(chan struct{}),
	}
	cmd.Stderr = c.log
	if echo != nil {
		cmd.Stderr = io.MultiWriter(c.log, echo)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start worker %s: %w", c.name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		readBenchMsgs(stdout, c.msgs, func(line string) { fmt.Fprintln(c.log, line) })
	}()
	go func() {
		<-read // Wait closes stdout; read it to the end first
		c.err = cmd.Wait()
		c.usage, c.hasRU = benchExitedUsage(cmd.ProcessState)
		close(c.exit)
	}()
	return c, nil
}

// next returns the worker's next protocol line, bounded by ctx. A worker
// that reports an error, or exits without a result, is an error.
func (c *benchChild) next(ctx context.Context) (benchMsg, error) {
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return benchMsg{}, c.failure("exited without a result")
		}
		if m.Type == wmError {
			return m, c.failure(m.Err)
		}
		return m, nil
	case <-ctx.Done():
		return benchMsg{}, c.failure(fmt.Sprintf("no answer: %v", ctx.Err()))
	}
}

// await returns the next line of type typ, skipping others (passed to skip,
// which may be nil), bounded by timeout.
func (c *benchChild) await(ctx context.Context, typ string, timeout time.Duration, skip func(benchMsg)) (benchMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		m, err := c.next(ctx)
		if err != nil {
			return m, err
		}
		if m.Type == typ {
			return m, nil
		}
		if skip != nil {
			skip(m)
		}
	}
}

// finish closes the worker's stdin (telling it to stop), waits for it to
// exit, and kills it after benchChildExitTimeout. Lines the worker still writes
// are discarded.
func (c *benchChild) finish() error {
	_ = c.stdin.Close()
	go c.drain()
	t := time.NewTimer(benchChildExitTimeout)
	defer t.Stop()
	select {
	case <-c.exit:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exit
		return c.failure("did not exit; killed")
	}
	return nil
}

// kill stops the worker at once.
func (c *benchChild) kill() {
	_ = c.stdin.Close()
	go c.drain()
	_ = c.cmd.Process.Kill()
	<-c.exit
}

// drain discards protocol lines so the reader, and so Wait, never block.
func (c *benchChild) drain() {
	for range c.msgs {
	}
}

func (c *benchChild) failure(what string) error {
	out := strings.TrimSpace(c.log.String())
	if out != "" {
		out = "\n" + benchIndent(out, "    ")
	}
	return fmt.Errorf("worker %s: %s%s", c.name, what, out)
}

func benchIndent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// benchTailBuffer keeps the last max bytes written to it.
type benchTailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *benchTailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *benchTailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
