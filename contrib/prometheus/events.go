package warrenprom

import (
	"time"

	"github.com/warrenmq/warren/conn"
)

// OnEvent feeds the outage and dial histograms. Set it as the Supervisor's
// conn.Options.OnEvent, or call it from your own handler with every event.
// The durations come from the events' times: an outage runs from the state
// change that left Ready to the state change back to Ready; a connection
// attempt from New (a Supervisor starts dialing in New and emits no event
// for it, so create the Metrics just before the Supervisor), from the state
// change to Reconnecting (which
// includes the backoff before the first attempt after a loss, Policy.Initial
// at most plus jitter) or from a failed attempt's end plus its backoff
// Delay, to Ready (result "ok") or the next EventDialFailed (result
// "failed"). Events dropped because OnEvent lagged are missing from them.
func (m *Metrics) OnEvent(e conn.Event) {
	c := &m.ev
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Kind {
	case conn.EventStateChanged:
		switch e.State {
		case conn.Connecting, conn.Reconnecting:
			if e.State == conn.Reconnecting && c.lostAt.IsZero() {
				c.lostAt = e.Time
			}
			c.dueAt = e.Time
		case conn.Ready:
			if !c.dueAt.IsZero() {
				m.dial.WithLabelValues("ok").Observe(seconds(e.Time.Sub(c.dueAt)))
			}
			if !c.lostAt.IsZero() {
				m.outage.Observe(seconds(e.Time.Sub(c.lostAt)))
			}
			c.lostAt, c.dueAt = time.Time{}, time.Time{}
		case conn.Closing, conn.Closed:
			c.lostAt, c.dueAt = time.Time{}, time.Time{}
		}
	case conn.EventDialFailed:
		if !c.dueAt.IsZero() {
			m.dial.WithLabelValues("failed").Observe(seconds(e.Time.Sub(c.dueAt)))
		}
		c.dueAt = e.Time.Add(e.Delay)
	}
}

// seconds is d in seconds, never negative (event times are wall clock
// readings with a monotonic part, but a Delay-shifted start may pass the
// attempt's end when the backoff is cut short).
func seconds(d time.Duration) float64 {
	return max(d, 0).Seconds()
}
