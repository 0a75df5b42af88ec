package faultproxy

import (
	"sync"
	"time"
)

// gate is the fault state that every link consults before moving a byte:
// whether traffic is held, and how late it is delivered. gate.mu is a leaf
// lock (nothing else is locked while it is held), so pipes may consult the
// gate under their own lock; that is what makes Blackhole strict for every
// byte read after it returns.
type gate struct {
	mu         sync.Mutex
	blackholed bool
	latency    time.Duration
	// changed is closed and replaced on every change, so any number of
	// waiters learn about it without the gate tracking them.
	changed chan struct{}
}

// gateState is a consistent copy of the gate, plus the channel that is
// closed when it stops being current.
type gateState struct {
	blackholed bool
	latency    time.Duration
	changed    <-chan struct{}
}

func newGate() *gate {
	return &gate{changed: make(chan struct{})}
}

func (g *gate) snapshot() gateState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gateState{blackholed: g.blackholed, latency: g.latency, changed: g.changed}
}

func (g *gate) setBlackholed(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.updateLocked(on, g.latency)
}

func (g *gate) setLatency(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.updateLocked(g.blackholed, d)
}

// heal releases held traffic and drops latency in one change, so no pipe
// observes a healed-but-still-delayed state in between.
func (g *gate) heal() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.updateLocked(false, 0)
}

// updateLocked is the only place the gate changes; it ignores a no-op change
// so waiters are not woken for nothing. Caller must hold g.mu.
func (g *gate) updateLocked(blackholed bool, latency time.Duration) {
	if latency < 0 {
		latency = 0
	}
	if g.blackholed == blackholed && g.latency == latency {
		return
	}
	g.blackholed, g.latency = blackholed, latency
	close(g.changed)
	g.changed = make(chan struct{})
}
