package cluster_test

import (
	"sync"
	"time"
)

// tally counts, per message id in [0, n), how often the publisher's broker
// confirmed it and how often the consumer received it, and when confirms
// arrived, so a test can tell lost, duplicated and delayed messages apart.
type tally struct {
	mu        sync.Mutex
	confirmed []bool
	received  []int
	// confirmedTimes holds the arrival time of every confirm, in order, for
	// the publisher-side gaps.
	confirmedTimes []time.Time
	failed         map[string]int // why publishes failed, counted
	redelivered    int
	delivered      int // every delivery, duplicates and foreign ids included
	// progress is poked (without blocking) on every delivery.
	progress chan struct{}
}

func newTally(n int) *tally {
	return &tally{
		confirmed: make([]bool, n),
		received:  make([]int, n),
		failed:    map[string]int{},
		progress:  make(chan struct{}, 1),
	}
}

func (t *tally) confirm(id int, at time.Time) {
	t.mu.Lock()
	t.confirmed[id] = true
	t.confirmedTimes = append(t.confirmedTimes, at)
	t.mu.Unlock()
}

func (t *tally) fail(err error) {
	t.mu.Lock()
	t.failed[err.Error()]++
	t.mu.Unlock()
}

// receive records a delivery of id; ids out of range count as foreign.
func (t *tally) receive(id int, redelivered bool) {
	t.mu.Lock()
	if id >= 0 && id < len(t.received) {
		t.received[id]++
	}
	if redelivered {
		t.redelivered++
	}
	t.delivered++
	t.mu.Unlock()
	select {
	case t.progress <- struct{}{}:
	default:
	}
}

// deliveries returns how many deliveries the consumer has had so far.
func (t *tally) deliveries() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.delivered
}

// summary is a tally's result.
type summary struct {
	confirmed, failed, received, lost, duplicates, redelivered int
	// unconfirmedReceived counts ids received although their publish was
	// never confirmed (allowed: a confirm lost with its connection).
	unconfirmedReceived int
	failures            map[string]int
	lostIDs             []int // the first few
}

func (t *tally) summary() summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := summary{failures: map[string]int{}, redelivered: t.redelivered}
	for why, n := range t.failed {
		s.failures[why] = n
		s.failed += n
	}
	for id, got := range t.received {
		if got > 0 {
			s.received++
			s.duplicates += got - 1
		}
		switch {
		case t.confirmed[id] && got == 0:
			s.lost++
			if len(s.lostIDs) < 10 {
				s.lostIDs = append(s.lostIDs, id)
			}
		case !t.confirmed[id] && got > 0:
			s.unconfirmedReceived++
		}
		if t.confirmed[id] {
			s.confirmed++
		}
	}
	return s
}

// longestConfirmGap returns the longest time between two consecutive
// confirms, and when it began: the publisher's view of an outage.
func (t *tally) longestConfirmGap() (gap time.Duration, from time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 1; i < len(t.confirmedTimes); i++ {
		if d := t.confirmedTimes[i].Sub(t.confirmedTimes[i-1]); d > gap {
			gap, from = d, t.confirmedTimes[i-1]
		}
	}
	return gap, from
}

// longestGapIn returns the longest time between two consecutive confirms
// of which at least one falls in [from, to]: the publisher's view of an
// outage in that window.
func (t *tally) longestGapIn(from, to time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(t.confirmedTimes); i++ {
		a, b := t.confirmedTimes[i-1], t.confirmedTimes[i]
		if b.Before(from) || a.After(to) {
			continue
		}
		gap = max(gap, b.Sub(a))
	}
	return gap
}
