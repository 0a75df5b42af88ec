package warrenotel

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/warrenmq/warren/conn"
)

// stateKey labels warren.connection.state.
const stateKey = attribute.Key("warren.state")

// statCounter is one Stats counter exported as an observable counter.
type statCounter struct {
	name, help string
	read       func(*conn.Stats) uint64
}

// statCounters are every counter of conn.Stats, named as the Prometheus
// module names them, in OTel's dotted style (warren.dials, ...).
var statCounters = []statCounter{
	{"warren.dials", "Dial attempts, successful or not.", func(s *conn.Stats) uint64 { return s.Dials }},
	{"warren.dials.failed", "Dials (and ready hooks) that failed.", func(s *conn.Stats) uint64 { return s.FailedDials }},
	{"warren.connections", "Connections that became Ready.", func(s *conn.Stats) uint64 { return s.Connections }},
	{"warren.reconnects", "Connections that became Ready after an earlier one was lost.", func(s *conn.Stats) uint64 { return s.Reconnects }},
	{"warren.connections.lost", "Ready connections that ended other than by Close.", func(s *conn.Stats) uint64 { return s.ConnectionsLost }},
	{"warren.dead_peers", "Connections closed because the broker went silent.", func(s *conn.Stats) uint64 { return s.DeadPeers }},
	{"warren.blocked", "connection.blocked notifications.", func(s *conn.Stats) uint64 { return s.BlockedTimes }},
	{"warren.blocked.timeouts", "Connections closed for staying blocked past BlockedTimeout.", func(s *conn.Stats) uint64 { return s.BlockedTimeouts }},
	{"warren.hook.failures", "Ready hooks that failed.", func(s *conn.Stats) uint64 { return s.HookFailures }},
	{"warren.stalls", "User callbacks that ran past the stall threshold.", func(s *conn.Stats) uint64 { return s.Stalls }},
	{"warren.events.emitted", "Events emitted, delivered or not.", func(s *conn.Stats) uint64 { return s.EventsEmitted }},
	{"warren.events.dropped", "Events dropped because the event buffer was full.", func(s *conn.Stats) uint64 { return s.EventsDropped }},
	{"warren.published", "Messages written by publishers, republications included.", func(s *conn.Stats) uint64 { return s.Published }},
	{"warren.confirmed", "Messages the broker acknowledged.", func(s *conn.Stats) uint64 { return s.Confirmed }},
	{"warren.nacked", "Messages the broker refused.", func(s *conn.Stats) uint64 { return s.Nacked }},
	{"warren.republished", "Messages published again after their connection died before the confirm.", func(s *conn.Stats) uint64 { return s.Republished }},
	{"warren.returned", "Mandatory messages the broker returned as unroutable.", func(s *conn.Stats) uint64 { return s.Returned }},
	{"warren.delivered", "Deliveries handed to consumer handlers.", func(s *conn.Stats) uint64 { return s.Delivered }},
	{"warren.handler.errors", "Consumer handler calls that returned an error.", func(s *conn.Stats) uint64 { return s.HandlerErrors }},
	{"warren.handler.panics", "Consumer handler calls that panicked.", func(s *conn.Stats) uint64 { return s.HandlerPanics }},
}

// ObserveStats exports sup's Stats: every counter as an observable counter
// (see statCounters) and the state and blocked flag as the observable
// gauges warren.connection.state (1 for the current state, by
// warren.state) and warren.connection.blocked, all read once per
// collection. Unregister the returned registration when sup is gone.
func (i *Instrumentation) ObserveStats(sup *conn.Supervisor) (metric.Registration, error) {
	var observables []metric.Observable
	counters := make([]metric.Int64ObservableCounter, len(statCounters))
	for k, sc := range statCounters {
		c, err := i.meter.Int64ObservableCounter(sc.name, metric.WithDescription(sc.help))
		if err != nil {
			return nil, err
		}
		counters[k] = c
		observables = append(observables, c)
	}
	state, err := i.meter.Int64ObservableGauge("warren.connection.state",
		metric.WithDescription("1 for the supervisor's current state (warren.state), 0 for the others."))
	if err != nil {
		return nil, err
	}
	blocked, err := i.meter.Int64ObservableGauge("warren.connection.blocked",
		metric.WithDescription("1 while the broker blocks the connection."))
	if err != nil {
		return nil, err
	}
	observables = append(observables, state, blocked)
	return i.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := sup.Stats()
		for k, sc := range statCounters {
			o.ObserveInt64(counters[k], int64(sc.read(&st)), i.measured)
		}
		for _, s := range []conn.State{conn.Connecting, conn.Ready, conn.Reconnecting, conn.Closing, conn.Closed} {
			v := int64(0)
			if st.State == s {
				v = 1
			}
			o.ObserveInt64(state, v, metric.WithAttributes(append([]attribute.KeyValue{stateKey.String(s.String())}, i.attrs...)...))
		}
		v := int64(0)
		if st.Blocked {
			v = 1
		}
		o.ObserveInt64(blocked, v, i.measured)
		return nil
	}, observables...)
}

// EventHandler returns an event handler that feeds warren.outage.duration
// and warren.dial.duration for one Supervisor, measured as the Prometheus
// module measures them: set it as that Supervisor's conn.Options.OnEvent, or
// call it from your own handler with every event. Its first connection
// attempt is timed from the call (a Supervisor starts dialing in New and
// emits no event for it), so call it just before conn.New. Each Supervisor
// needs a handler of its own.
func (i *Instrumentation) EventHandler() func(conn.Event) {
	c := &eventClock{inst: i, dueAt: time.Now()}
	return c.onEvent
}

// eventClock turns one Supervisor's events into outage and dial durations.
type eventClock struct {
	inst   *Instrumentation
	mu     sync.Mutex
	lostAt time.Time // when Ready was lost; zero while Ready or closing
	dueAt  time.Time // when the current connection attempt started; zero if none
}

func (c *eventClock) onEvent(e conn.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.inst
	ctx := context.Background()
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
				i.dial.Record(ctx, seconds(e.Time.Sub(c.dueAt)), metric.WithAttributes(dialResultKey.String("ok")), i.measured)
			}
			if !c.lostAt.IsZero() {
				i.outage.Record(ctx, seconds(e.Time.Sub(c.lostAt)), i.measured)
			}
			c.lostAt, c.dueAt = time.Time{}, time.Time{}
		case conn.Closing, conn.Closed:
			c.lostAt, c.dueAt = time.Time{}, time.Time{}
		}
	case conn.EventDialFailed:
		if !c.dueAt.IsZero() {
			i.dial.Record(ctx, seconds(e.Time.Sub(c.dueAt)), metric.WithAttributes(dialResultKey.String("failed")), i.measured)
		}
		c.dueAt = e.Time.Add(e.Delay)
	}
}

// seconds is d in seconds, never negative.
func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }
