package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildService builds this command with the race detector into a
// temporary directory, so the chaos test drives the real binary and sends
// it a real SIGTERM.
func buildService(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "service")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-race", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// stateChange is a "warren: state changed" line of the service's log.
type stateChange struct {
	at         time.Time
	connection string
	from, to   string
}

// proc is one run of the service binary. It reads the JSON log on stderr:
// the address it serves on, the orders it processed, its state changes.
type proc struct {
	cmd    *exec.Cmd
	addr   chan string
	exited chan struct{}
	// Written once before exited is closed.
	waitErr error
	exitAt  time.Time

	mu        sync.Mutex
	processed map[string]int // idempotency key -> times processed
	changes   []stateChange
	lines     []string      // the whole log
	parsed    int           // lines[:parsed] are parsed
	slowest   time.Duration // the slowest request the service logged
	raced     bool
}

// startBinary starts bin with env and waits until it serves HTTP.
func startBinary(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: make(chan string, 1), exited: make(chan struct{}), processed: make(map[string]int)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.line(sc.Text())
		}
		p.waitErr = cmd.Wait()
		p.exitAt = time.Now()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("service log (last 150 lines):\n%s", p.tail(150))
		}
	})
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case a := <-p.addr:
		p.addr <- a // for serving
		return p
	case <-p.exited:
		t.Fatalf("service exited before serving: %v\n%s", p.waitErr, p.tail(50))
	case <-timer.C:
		t.Fatalf("service not serving after 30s\n%s", p.tail(50))
	}
	return nil
}

// line keeps one line of the log. It must be quick: the service writes
// its log synchronously, so a slow reader here would stall the service's
// handlers behind a full pipe (it did, by 2 s, when every line was parsed
// here under load). Lines are parsed later, by parsed.
func (p *proc) line(s string) {
	if strings.Contains(s, `"msg":"serving"`) {
		var rec struct{ Addr string }
		if json.Unmarshal([]byte(s), &rec) == nil {
			p.addr <- rec.Addr
		}
	}
	p.mu.Lock()
	p.lines = append(p.lines, s)
	p.mu.Unlock()
}

// parse reads the lines kept since the last call: orders processed, state
// changes, slow requests, data races. Caller must hold p.mu.
func (p *proc) parseLocked() {
	for ; p.parsed < len(p.lines); p.parsed++ {
		s := p.lines[p.parsed]
		if strings.Contains(s, "DATA RACE") {
			p.raced = true
		}
		var rec map[string]any
		if json.Unmarshal([]byte(s), &rec) != nil {
			continue
		}
		str := func(k string) string { v, _ := rec[k].(string); return v }
		at, _ := time.Parse(time.RFC3339Nano, str("time"))
		switch str("msg") {
		case "request slower than PUBLISH_TIMEOUT":
			if took, ok := rec["took"].(float64); ok {
				p.slowest = max(p.slowest, time.Duration(took))
			}
		case "order processed":
			p.processed[str("idempotency_key")]++
		case "warren: state changed":
			p.changes = append(p.changes, stateChange{at: at, connection: str("connection"), from: str("from"), to: str("to")})
		}
	}
}

// serving returns the address; valid after startBinary.
func (p *proc) serving() string {
	a := <-p.addr
	p.addr <- a
	return a
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Errorf("signal %v: %v", sig, err)
	}
}

// wait waits for the exit, at most d.
func (p *proc) wait(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.exited:
		return true
	case <-timer.C:
		return false
	}
}

func (p *proc) processedCopy() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parseLocked()
	m := make(map[string]int, len(p.processed))
	for k, v := range p.processed {
		m[k] = v
	}
	return m
}

func (p *proc) processedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parseLocked()
	return len(p.processed)
}

// firstNotReady returns the first state change of the publishing
// connection away from Ready at or after t.
func (p *proc) firstNotReady(after time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parseLocked()
	for _, c := range p.changes {
		if c.connection == "publish" && c.from == "Ready" && !c.at.Before(after) {
			return c.at, true
		}
	}
	return time.Time{}, false
}

// slowestRequest is the slowest request the service logged as slow, or 0.
func (p *proc) slowestRequest() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parseLocked()
	return p.slowest
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := max(0, len(p.lines)-n)
	return strings.Join(p.lines[from:], "\n")
}

func (p *proc) count(substr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (p *proc) String() string { return fmt.Sprintf("service pid %d", p.cmd.Process.Pid) }

// hasRaced reports whether the race detector wrote to the log.
func (p *proc) hasRaced() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parseLocked()
	return p.raced
}
