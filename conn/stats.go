package conn

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Supervisor's counters since New.
type Stats struct {
	// State is the state when the snapshot was taken.
	State State
	// Blocked tells whether the broker was blocking the connection.
	Blocked bool
	// Dials counts dial attempts, successful or not.
	Dials uint64
	// FailedDials counts dials (and ready hooks) that failed.
	FailedDials uint64
	// Connections counts connections that became Ready.
	Connections uint64
	// Reconnects counts connections that became Ready after an earlier one was lost.
	Reconnects uint64
	// ConnectionsLost counts ready connections that ended other than by Close.
	ConnectionsLost uint64
	// DeadPeers counts connections closed because the broker went silent.
	DeadPeers uint64
	// BlockedTimes counts connection.blocked notifications.
	BlockedTimes uint64
	// BlockedTimeouts counts connections closed for staying blocked too long.
	BlockedTimeouts uint64
	// HookFailures counts ready hooks that failed.
	HookFailures uint64
	// Stalls counts user callbacks that ran past the stall threshold.
	Stalls uint64
	// EventsEmitted counts events emitted, delivered or not.
	EventsEmitted uint64
	// EventsDropped counts events dropped because the buffer was full.
	EventsDropped uint64
	// Published counts messages handed to the broker by publishers
	// (republications included).
	Published uint64
	// Confirmed counts messages the broker acknowledged (basic.ack).
	Confirmed uint64
	// Nacked counts messages the broker refused (basic.nack).
	Nacked uint64
	// Republished counts messages published again on a new connection because
	// the old one died before their confirm.
	Republished uint64
	// Returned counts mandatory messages the broker returned as unroutable.
	Returned uint64
	// Delivered counts deliveries handed to consumer handlers.
	Delivered uint64
	// HandlerErrors counts consumer handler calls that returned an error.
	HandlerErrors uint64
	// HandlerPanics counts consumer handler calls that panicked.
	HandlerPanics uint64
	// TimeIn is the total time spent in each state, indexed by State.
	TimeIn [numStates]time.Duration
}

// numStates is the number of State values, for per-state arrays.
const numStates = int(Closed) + 1

// counters are the supervisor's hot-path counters: atomics, no lock.
type counters struct {
	dials, failedDials, connections, reconnects, lost, deadPeers atomic.Uint64
	blocked, blockedTimeouts, hookFailures, stalls, emitted      atomic.Uint64

	// Publisher and consumer counters, summed over all of them.
	published, confirmed, nacked, republished, returned atomic.Uint64
	delivered, handlerErrors, handlerPanics             atomic.Uint64
}

// Stats returns a snapshot of the counters. It takes the state lock once to
// read the per-state durations consistently; the counters themselves are atomics.
func (s *Supervisor) Stats() Stats {
	st := Stats{
		Blocked:         s.Blocked(),
		Dials:           s.ctr.dials.Load(),
		FailedDials:     s.ctr.failedDials.Load(),
		Connections:     s.ctr.connections.Load(),
		Reconnects:      s.ctr.reconnects.Load(),
		ConnectionsLost: s.ctr.lost.Load(),
		DeadPeers:       s.ctr.deadPeers.Load(),
		BlockedTimes:    s.ctr.blocked.Load(),
		BlockedTimeouts: s.ctr.blockedTimeouts.Load(),
		HookFailures:    s.ctr.hookFailures.Load(),
		Stalls:          s.ctr.stalls.Load(),
		EventsEmitted:   s.ctr.emitted.Load(),
		EventsDropped:   s.events.dropped.Load(),
		Published:       s.ctr.published.Load(),
		Confirmed:       s.ctr.confirmed.Load(),
		Nacked:          s.ctr.nacked.Load(),
		Republished:     s.ctr.republished.Load(),
		Returned:        s.ctr.returned.Load(),
		Delivered:       s.ctr.delivered.Load(),
		HandlerErrors:   s.ctr.handlerErrors.Load(),
		HandlerPanics:   s.ctr.handlerPanics.Load(),
	}
	s.mu.Lock()
	st.State = s.state
	st.TimeIn = s.timeIn
	st.TimeIn[s.state] += time.Since(s.stateSince)
	s.mu.Unlock()
	return st
}
