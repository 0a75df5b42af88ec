package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// fakeDst records what a pipe delivers and signals every change.
type fakeDst struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	halfClose bool
	writeErr  error
	changed   chan struct{}
}

func newFakeDst() *fakeDst { return &fakeDst{changed: make(chan struct{}, 1)} }

func (d *fakeDst) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer kick(d.changed)
	if d.writeErr != nil {
		return 0, d.writeErr
	}
	return d.buf.Write(b)
}

func (d *fakeDst) CloseWrite() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.halfClose = true
	kick(d.changed)
	return nil
}

func (d *fakeDst) state() (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String(), d.halfClose
}

// waitFor waits until the destination holds want (and is half-closed if
// closed is set).
func (d *fakeDst) waitFor(t *testing.T, want string, closed bool) {
	t.Helper()
	deadline := time.NewTimer(defaultTestTimeout)
	defer deadline.Stop()
	for {
		got, hc := d.state()
		if got == want && hc == closed {
			return
		}
		select {
		case <-d.changed:
		case <-deadline.C:
			t.Fatalf("dst = (%q, half-closed %v), want (%q, %v)", got, hc, want, closed)
		}
	}
}

// pipeHarness runs a pipe from an io.Pipe into a fakeDst.
type pipeHarness struct {
	src     *io.PipeWriter
	dst     *fakeDst
	gate    *gate
	pipe    *pipe
	done    chan struct{}
	aborted chan struct{}
	wg      sync.WaitGroup
}

func startPipe(t *testing.T, maxHeld int) *pipeHarness {
	t.Helper()
	r, w := io.Pipe()
	h := &pipeHarness{
		src:     w,
		dst:     newFakeDst(),
		gate:    newGate(),
		done:    make(chan struct{}),
		aborted: make(chan struct{}),
	}
	var once sync.Once
	abort := func() {
		once.Do(func() {
			close(h.aborted)
			close(h.done)
			_ = r.Close()
		})
	}
	h.pipe = newPipe(r, h.dst, h.gate, h.done, abort, maxHeld)
	h.wg.Add(2)
	go func() { defer h.wg.Done(); h.pipe.readLoop() }()
	go func() { defer h.wg.Done(); h.pipe.writeLoop() }()
	t.Cleanup(func() {
		abort()
		h.wg.Wait()
	})
	return h
}

func (h *pipeHarness) write(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(h.src, s); err != nil {
		t.Fatal(err)
	}
}

func (h *pipeHarness) expectAbort(t *testing.T, want bool) {
	t.Helper()
	wait := shortTimeout
	if want {
		wait = defaultTestTimeout
	}
	select {
	case <-h.aborted:
		if !want {
			t.Fatal("pipe aborted the link")
		}
	case <-time.After(wait):
		if want {
			t.Fatal("pipe did not abort the link")
		}
	}
}

func TestPipeForwardsInOrderThenHalfCloses(t *testing.T) {
	h := startPipe(t, MaxHeld)
	h.write(t, "one ")
	h.write(t, "two")
	h.dst.waitFor(t, "one two", false)
	_ = h.src.Close()
	h.dst.waitFor(t, "one two", true)
	h.expectAbort(t, false)
}

func TestPipeHoldsBytesAndCloseWhileBlackholed(t *testing.T) {
	h := startPipe(t, MaxHeld)
	h.gate.setBlackholed(true)
	h.write(t, "held")
	_ = h.src.Close()
	time.Sleep(shortTimeout)
	if got, hc := h.dst.state(); got != "" || hc {
		t.Fatalf("dst = (%q, half-closed %v) while blackholed, want nothing", got, hc)
	}
	if got := h.pipe.held(); got != len("held") {
		t.Fatalf("held() = %d, want %d", got, len("held"))
	}
	h.gate.heal()
	h.dst.waitFor(t, "held", true)
	if got := h.pipe.held(); got != 0 {
		t.Fatalf("held() = %d after heal, want 0", got)
	}
}

func TestPipeStopsReadingWhenFull(t *testing.T) {
	const maxHeld = 8
	h := startPipe(t, maxHeld)
	h.gate.setBlackholed(true)
	// io.Pipe writes return only once the reader took every byte, so a
	// write past the limit blocks exactly when the pipe stops reading.
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(h.src, "0123456789abcdef")
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("write past the hold limit returned (%v), want it blocked", err)
	case <-time.After(shortTimeout):
	}
	if got := h.pipe.held(); got != maxHeld {
		t.Fatalf("held() = %d, want %d", got, maxHeld)
	}
	h.gate.heal()
	waitErr(t, wrote, "write")
	h.dst.waitFor(t, "0123456789abcdef", false)
}

func TestPipeAborts(t *testing.T) {
	tests := []struct {
		name    string
		breakFn func(h *pipeHarness)
	}{
		{"source reset", func(h *pipeHarness) {
			_ = h.src.CloseWithError(errors.New("connection reset by peer"))
		}},
		{"destination write error", func(h *pipeHarness) {
			h.dst.mu.Lock()
			h.dst.writeErr = errors.New("broken pipe")
			h.dst.mu.Unlock()
			_, _ = io.WriteString(h.src, "x")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startPipe(t, MaxHeld)
			tt.breakFn(h)
			h.expectAbort(t, true)
		})
	}
}

func TestPipeHoldsResetUntilHeal(t *testing.T) {
	h := startPipe(t, MaxHeld)
	h.gate.setBlackholed(true)
	h.write(t, "last words")
	_ = h.src.CloseWithError(errors.New("connection reset by peer"))
	h.expectAbort(t, false)
	h.gate.heal()
	h.expectAbort(t, true)
	if got, _ := h.dst.state(); got != "last words" {
		t.Fatalf("dst = %q, want the bytes before the reset delivered first", got)
	}
}

func TestPipeLatencyAppliesToQueuedBytes(t *testing.T) {
	h := startPipe(t, MaxHeld)
	h.gate.setLatency(time.Hour)
	h.write(t, "late")
	time.Sleep(shortTimeout)
	if got, _ := h.dst.state(); got != "" {
		t.Fatalf("dst = %q before the latency passed", got)
	}
	// Lowering the latency releases bytes already queued.
	h.gate.setLatency(0)
	h.dst.waitFor(t, "late", false)
}
