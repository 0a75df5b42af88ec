package main

import (
	"sync"
	"time"
)

// benchLiveness turns a client's connection changes, as the contender's own API
// reports them, into protocol lines: one "ready" when the worker says the
// client is set up, then "lost" and "up" for every loss and recovery. Changes
// reported before start (the client's own first connection) are ignored.
// Safe for concurrent use.
type benchLiveness struct {
	rep *benchReporter

	mu      sync.Mutex
	started bool
	down    bool
	lostAt  time.Time // monotonic, for the worker-side outage
	nLost   int
	lost1   chan struct{} // closed at the first loss
}

func newBenchLiveness(rep *benchReporter) *benchLiveness {
	return &benchLiveness{rep: rep, lost1: make(chan struct{})}
}

// start reports "ready".
func (l *benchLiveness) start() {
	l.mu.Lock()
	l.started = true
	l.mu.Unlock()
	l.rep.send(benchMsg{Type: wmReady})
}

// lost reports a lost connection noticed at at. A loss while already down is
// ignored, so a client may report one loss through several signals.
func (l *benchLiveness) lost(at time.Time, err error, deadPeer bool) {
	l.mu.Lock()
	if !l.started || l.down {
		l.mu.Unlock()
		return
	}
	l.down = true
	l.lostAt = at
	l.nLost++
	if l.nLost == 1 {
		close(l.lost1)
	}
	l.mu.Unlock()
	m := benchMsg{Type: wmLost, T: at.UnixNano(), DeadPeer: deadPeer}
	if err != nil {
		m.Err = err.Error()
	}
	l.rep.send(m)
}

// up reports the client publishable again at at.
func (l *benchLiveness) up(at time.Time) {
	l.mu.Lock()
	if !l.started || !l.down {
		l.mu.Unlock()
		return
	}
	l.down = false
	outage := at.Sub(l.lostAt)
	l.mu.Unlock()
	l.rep.send(benchMsg{Type: wmUp, T: at.UnixNano(), OutageNS: int64(outage)})
}

// firstLoss is closed at the first loss after start.
func (l *benchLiveness) firstLoss() <-chan struct{} { return l.lost1 }

// losses counts the losses reported since start.
func (l *benchLiveness) losses() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nLost
}
