package main

import (
	"context"
	"sync"
	"time"

	"github.com/warrenmq/warren/conn"
)

// demoSide names the demo's two supervisors.
type demoSide int

const (
	demoPublisher demoSide = iota
	demoConsumer
	demoNumSides
)

func (s demoSide) String() string {
	if s == demoPublisher {
		return "publisher"
	}
	return "consumer"
}

// demoSideRecord is what one supervisor went through during one fault.
type demoSideRecord struct {
	// DetectedAt is warren's first event about the fault (DeadPeer,
	// ConnectionLost or Blocked), DetectedBy its kind.
	DetectedAt time.Time
	DetectedBy conn.EventKind
	// LostAt is the first loss (ConnectionLost or Blocked: publishing or
	// consuming stopped), BackAt the last return to Ready and unblocked.
	LostAt, BackAt time.Time
	// Outage sums the time spent lost over Losses outages: a fault can
	// cause more than one (a broker that stalls while it stops, a blocked
	// connection that is also found dead).
	Outage time.Duration
	Losses int
	// lostSince is the start of the current outage, zero when healthy.
	lostSince time.Time
}

// outage returns the summed outage, and whether there was one that ended.
func (r demoSideRecord) outage() (time.Duration, bool) {
	return r.Outage, r.Losses > 0 && r.lostSince.IsZero()
}

// demoFaultRecord is the measurements of one injected fault.
type demoFaultRecord struct {
	Kind demoFault
	// Start is when the injection began (the proxy flip, or the start of the
	// rabbitmqctl call), Injected when the injection call returned, Cleared
	// when the fault was cleared (zero for a forced close).
	Start, Injected, Cleared time.Time
	// Err is why the fault could not be injected, or nil.
	Err error
	// Sides are the publisher's and the consumer's records.
	Sides [demoNumSides]demoSideRecord
	// Republished counts messages the publisher republished from Start
	// until the next fault (or the end of publishing).
	Republished uint64
	// repBase is the publisher's Stats().Republished at Start.
	repBase uint64
}

// detect returns Start→DetectedAt for side, and whether it is known.
func (r demoFaultRecord) detect(side demoSide) (time.Duration, bool) {
	s := r.Sides[side]
	if s.DetectedAt.IsZero() {
		return 0, false
	}
	return s.DetectedAt.Sub(r.Start), true
}

// demoSideState is a supervisor's health as its events tell it.
type demoSideState struct {
	ready, blocked bool
	// closed: the supervisor stopped for good; it will not be healthy again.
	closed bool
	// outSince is when the current outage began; zero when healthy.
	outSince time.Time
	// lastOutage is the last finished outage, lastOutageFault the fault
	// running when it began ("" for none).
	lastOutage      time.Duration
	lastOutageFault string
	outFault        string
}

func (s demoSideState) healthy() bool { return s.ready && !s.blocked }

// demoTracker turns both supervisors' events into per-fault measurements and a
// health signal the fault runner waits on. It is fed from OnEvent, so it
// never blocks.
type demoTracker struct {
	mu      sync.Mutex
	sides   [demoNumSides]demoSideState
	records []demoFaultRecord
	cur     int // index into records of the running fault, or -1
	changed chan struct{}
}

func newDemoTracker() *demoTracker {
	return &demoTracker{cur: -1, changed: make(chan struct{})}
}

// demoNote is what an event meant, for the demo's narration.
type demoNote struct {
	// detected: the event is the first sign of the running fault, after
	// detectAfter.
	detected    bool
	detectAfter time.Duration
	// recovered: the event ended an outage of length outage.
	recovered bool
	outage    time.Duration
}

// observe feeds one event of side's supervisor to the tracker.
func (t *demoTracker) observe(side demoSide, e conn.Event) (n demoNote) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := &t.sides[side]
	switch e.Kind {
	case conn.EventStateChanged:
		ss.ready = e.State == conn.Ready
		ss.closed = e.State == conn.Closed
	case conn.EventConnectionLost:
		// Emitted before the state leaves Ready.
		ss.ready = false
	case conn.EventBlocked:
		ss.blocked = true
	case conn.EventUnblocked:
		ss.blocked = false
	}
	loss := e.Kind == conn.EventConnectionLost || e.Kind == conn.EventBlocked
	if loss && ss.outSince.IsZero() {
		ss.outSince = e.Time
		ss.outFault = ""
		if t.cur >= 0 {
			ss.outFault = t.records[t.cur].Kind.String()
		}
	}
	if !ss.outSince.IsZero() && ss.healthy() {
		n.recovered, n.outage = true, e.Time.Sub(ss.outSince)
		ss.lastOutage = n.outage
		ss.lastOutageFault = ss.outFault
		ss.outSince = time.Time{}
	}
	if t.cur >= 0 && !e.Time.Before(t.records[t.cur].Start) {
		r := &t.records[t.cur].Sides[side]
		switch e.Kind {
		case conn.EventDeadPeer, conn.EventConnectionLost, conn.EventBlocked:
			if r.DetectedAt.IsZero() {
				r.DetectedAt, r.DetectedBy = e.Time, e.Kind
				n.detected, n.detectAfter = true, e.Time.Sub(t.records[t.cur].Start)
			}
		}
		if loss && r.lostSince.IsZero() {
			r.lostSince = e.Time
			r.Losses++
			if r.LostAt.IsZero() {
				r.LostAt = e.Time
			}
		}
		if !r.lostSince.IsZero() && ss.healthy() {
			r.Outage += e.Time.Sub(r.lostSince)
			r.lostSince = time.Time{}
			r.BackAt = e.Time
		}
	}
	close(t.changed)
	t.changed = make(chan struct{})
	return n
}

// begin starts the record of a fault injected from start on; events from then
// on are attributed to it until the next begin or finish.
func (t *demoTracker) begin(k demoFault, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records = append(t.records, demoFaultRecord{Kind: k, Start: start})
	t.cur = len(t.records) - 1
}

// update changes the running fault's record under the lock.
func (t *demoTracker) update(f func(r *demoFaultRecord)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur >= 0 {
		f(&t.records[t.cur])
	}
}

// finish stops attributing events to the running fault.
func (t *demoTracker) finish() {
	t.mu.Lock()
	t.cur = -1
	t.mu.Unlock()
}

// faults returns a copy of every fault record.
func (t *demoTracker) faults() []demoFaultRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]demoFaultRecord(nil), t.records...)
}

// side returns side's current health.
func (t *demoTracker) side(side demoSide) demoSideState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sides[side]
}

// waitHealthy waits until both supervisors are Ready and unblocked, bounded
// by ctx; it reports whether they are. It gives up at once when one has
// stopped for good.
func (t *demoTracker) waitHealthy(ctx context.Context) bool {
	for {
		t.mu.Lock()
		ok, closed, changed := true, false, t.changed
		for _, s := range t.sides {
			ok = ok && s.healthy()
			closed = closed || s.closed
		}
		t.mu.Unlock()
		if ok {
			return true
		}
		if closed {
			return false
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}
