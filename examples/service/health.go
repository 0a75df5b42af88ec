package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/reconnect"
)

// health answers the two probes. They differ on purpose:
//
//   - /livez says the process works. It never looks at the broker: a
//     liveness probe that failed during a broker outage would restart every
//     instance at once and fix nothing.
//   - /readyz says this instance can take an order now: the publishing
//     connection is Ready, the broker is not blocking it, the window of
//     publishes awaiting confirms has room, and no shutdown has begun. It
//     reads the supervisor's state on every probe, so it is as quick as the
//     supervisor's own detection (heartbeat, dead peer, blocked).
type health struct {
	pub    *conn.Supervisor
	window *window

	// draining is set when SIGTERM arrives: not ready from then on.
	draining atomic.Bool
	// since is when pub last changed state (unix nanoseconds, from its
	// events), to say how long an outage has lasted.
	since atomic.Int64
}

func newHealth(w *window) *health {
	h := &health{window: w}
	h.since.Store(time.Now().UnixNano())
	return h
}

// noteEvent records the time of pub's state changes; it is part of pub's
// OnEvent.
func (h *health) noteEvent(e conn.Event) {
	if e.Kind == conn.EventStateChanged {
		h.since.Store(e.Time.UnixNano())
	}
}

// brokerProblem says, in words for a person, why an order cannot be
// published now, or returns "" if it can.
func (h *health) brokerProblem() string {
	st := h.pub.State()
	since := roughly(time.Since(time.Unix(0, h.since.Load())))
	switch st {
	case conn.Ready:
	case conn.Connecting:
		return fmt.Sprintf("not connected to RabbitMQ yet: the first connection has been tried for %v", since) + h.refused()
	case conn.Reconnecting:
		return fmt.Sprintf("the connection to RabbitMQ was lost %v ago and is being re-established", since) + h.refused()
	default:
		return "the connection to RabbitMQ is closed: the service is stopping"
	}
	if h.pub.Blocked() {
		return "RabbitMQ is blocking publishes because of a resource alarm on the broker (memory or disk)"
	}
	if h.window.full() {
		return fmt.Sprintf("%d orders are already waiting for RabbitMQ to confirm them, the most this instance holds (MAX_IN_FLIGHT)",
			h.window.size())
	}
	return ""
}

// refused adds why the last dial failed when RabbitMQ refused it for good
// (credentials, vhost, permissions, TLS), which an operator must fix, in
// words that name no host or user.
func (h *health) refused() string {
	if err := h.pub.Err(); err != nil && reconnect.IsPermanent(err) {
		return "; RabbitMQ refused the last attempt (credentials, vhost, permissions or TLS: see the log)"
	}
	return ""
}

// notReady is brokerProblem, or the shutdown.
func (h *health) notReady() string {
	if h.draining.Load() {
		return "shutting down: this instance takes no new traffic"
	}
	return h.brokerProblem()
}

func (h *health) livez(w http.ResponseWriter, _ *http.Request) {
	probeHeaders(w)
	fmt.Fprintln(w, "alive")
}

func (h *health) readyz(w http.ResponseWriter, _ *http.Request) {
	probeHeaders(w)
	if why := h.notReady(); why != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: "+why)
		return
	}
	fmt.Fprintln(w, "ready")
}

func probeHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
}

// roughly rounds d for a person: milliseconds under a second, tenths above.
func roughly(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
