package main

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/heartbeat"
)

// demoMaxReasonLen bounds an error's text in a narration line.
const demoMaxReasonLen = 90

// onEvent returns side's OnEvent: it feeds the tracker and tells the notable
// events as they happen. It runs on the supervisor's dispatcher goroutine
// and never blocks for long (the console lock is held only to print).
func (r *demoRun) onEvent(side demoSide) func(conn.Event) {
	return func(e conn.Event) {
		n := r.trk.observe(side, e)
		if line := demoNarration(side, e, n); line != "" {
			r.con.logf("%s", line)
		}
	}
}

// demoNarration is the log line for an event, or "" for events not worth one.
func demoNarration(side demoSide, e conn.Event, n demoNote) string {
	after := ""
	if n.detected {
		after = fmt.Sprintf(" (%s after the fault began)", demoDur(n.detectAfter))
	}
	who := fmt.Sprintf("%-9s", side)
	switch e.Kind {
	case conn.EventDeadPeer:
		return who + " dead peer: the broker went silent, socket closed" + after
	case conn.EventConnectionLost:
		return who + " connection lost: " + demoLossReason(e.Err) + after
	case conn.EventBlocked:
		return who + " blocked by the broker (resource alarm): publishes wait" + after
	case conn.EventStateChanged:
		if e.State == conn.Ready && n.recovered {
			return fmt.Sprintf("%s Ready again after a %s outage", who, demoDur(n.outage))
		}
		if e.State == conn.Ready {
			return who + " Ready"
		}
	case conn.EventUnblocked:
		if n.recovered {
			return fmt.Sprintf("%s unblocked after %s", who, demoDur(n.outage))
		}
	case conn.EventPublisherRepublished:
		return fmt.Sprintf("%s republished %d messages whose confirms the lost connection took with it", who, e.Attempt)
	case conn.EventStall:
		if e.Stall != nil && !e.Stall.Finished {
			return fmt.Sprintf("%s stall: %s running for %s", who, e.Stall.Name, demoDur(e.Stall.Elapsed))
		}
	}
	return ""
}

// demoLossReason says briefly why a connection ended.
func demoLossReason(err error) string {
	var dp *heartbeat.DeadPeerError
	if errors.As(err, &dp) {
		return "dead peer"
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return demoTruncate(fmt.Sprintf("%d %s", ae.Code, ae.Reason), demoMaxReasonLen)
	}
	if err == nil {
		return "no reason given"
	}
	return demoTruncate(demoFirstLine(err.Error()), demoMaxReasonLen)
}

func demoTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
