package conn

import (
	"context"
	"fmt"
	"sync"
)

// workGroup counts the goroutines a Supervisor lent to the resources it
// handed out (publishers, consumers, their handlers). Supervisor.Close waits
// for the count to reach zero, bounded by its context, instead of trusting
// every resource to report back (pgxpool's Close waits for its connections
// the same way). A goroutine started through Go is counted before Go returns,
// so Wait never misses one started before it was called.
type workGroup struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed while n == 0; replaced when n leaves 0
}

func newWorkGroup() *workGroup {
	z := make(chan struct{})
	close(z)
	return &workGroup{zero: z}
}

// Go runs f on a new goroutine, counted until f returns.
func (g *workGroup) Go(f func()) {
	g.add()
	go func() {
		defer g.done()
		f()
	}()
}

func (g *workGroup) add() {
	g.mu.Lock()
	if g.n == 0 {
		g.zero = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
}

func (g *workGroup) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 {
		close(g.zero)
	}
	g.mu.Unlock()
}

// Running returns how many counted goroutines have not returned yet.
func (g *workGroup) Running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Wait waits until no counted goroutine is running, bounded by ctx; the
// error names how many were left.
func (g *workGroup) Wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		n, zero := g.n, g.zero
		g.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-zero:
			// Recheck: a goroutine may have been added after the count hit zero.
		case <-ctx.Done():
			return fmt.Errorf("warren: %d goroutine(s) of publishers or consumers still running: %w", g.Running(), ctx.Err())
		}
	}
}
