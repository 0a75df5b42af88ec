package warrenprom

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warrenmq/warren/conn"
)

// Options configures a Metrics. The zero value of every field means its
// default.
type Options struct {
	// Connection is the value of the connection label on every metric; give
	// each Supervisor registered on one registry its own. Defaults to
	// "default".
	Connection string
	// Namespace prefixes every metric name. Defaults to "warren".
	Namespace string
	// Buckets are the bounds, in seconds, of the publish confirm, handler
	// duration and dial histograms. Defaults to prometheus.DefBuckets (5 ms
	// to 10 s).
	Buckets []float64
	// OutageBuckets are the bounds, in seconds, of the outage histogram.
	// Defaults to 0.1 s doubling to about 14 min.
	OutageBuckets []float64
}

func (o Options) withDefaults() Options {
	if o.Connection == "" {
		o.Connection = "default"
	}
	if o.Namespace == "" {
		o.Namespace = "warren"
	}
	if len(o.Buckets) == 0 {
		o.Buckets = prometheus.DefBuckets
	}
	if len(o.OutageBuckets) == 0 {
		o.OutageBuckets = prometheus.ExponentialBuckets(0.1, 2, 14)
	}
	return o
}

// Metrics is a prometheus.Collector of one Supervisor's metrics (see the
// package documentation for the list). Create it with New; it is safe for
// concurrent use.
type Metrics struct {
	opts Options
	sup  atomic.Pointer[conn.Supervisor]

	stats      []statDesc
	state      *prometheus.Desc
	stateTime  *prometheus.Desc
	blocked    *prometheus.Desc
	published  *prometheus.CounterVec
	confirm    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	handling   *prometheus.HistogramVec
	outage     prometheus.Histogram
	dial       *prometheus.HistogramVec

	ev eventClock
}

// statDesc is one Stats counter and how to read it.
type statDesc struct {
	desc *prometheus.Desc
	read func(*conn.Stats) uint64
}

// New returns the Metrics of one Supervisor; Register (or Watch and your own
// registration) attaches the Supervisor.
func New(opts Options) *Metrics {
	opts = opts.withDefaults()
	m := &Metrics{opts: opts}
	m.ev.dueAt = time.Now() // the first connection attempt; see OnEvent
	labels := prometheus.Labels{"connection": opts.Connection}
	desc := func(name, help string, varLabels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, "", name), help, varLabels, labels)
	}
	counter := func(name, help string, read func(*conn.Stats) uint64) {
		m.stats = append(m.stats, statDesc{desc(name, help), read})
	}
	counter("dials_total", "Dial attempts, successful or not.", func(s *conn.Stats) uint64 { return s.Dials })
	counter("dials_failed_total", "Dials (and ready hooks) that failed.", func(s *conn.Stats) uint64 { return s.FailedDials })
	counter("connections_total", "Connections that became Ready.", func(s *conn.Stats) uint64 { return s.Connections })
	counter("reconnects_total", "Connections that became Ready after an earlier one was lost.", func(s *conn.Stats) uint64 { return s.Reconnects })
	counter("connections_lost_total", "Ready connections that ended other than by Close.", func(s *conn.Stats) uint64 { return s.ConnectionsLost })
	counter("dead_peers_total", "Connections closed because the broker went silent.", func(s *conn.Stats) uint64 { return s.DeadPeers })
	counter("blocked_total", "connection.blocked notifications (resource alarms).", func(s *conn.Stats) uint64 { return s.BlockedTimes })
	counter("blocked_timeouts_total", "Connections closed for staying blocked past BlockedTimeout.", func(s *conn.Stats) uint64 { return s.BlockedTimeouts })
	counter("hook_failures_total", "Ready hooks that failed.", func(s *conn.Stats) uint64 { return s.HookFailures })
	counter("stalls_total", "User callbacks that ran past the stall threshold.", func(s *conn.Stats) uint64 { return s.Stalls })
	counter("events_emitted_total", "Events emitted, delivered or not.", func(s *conn.Stats) uint64 { return s.EventsEmitted })
	counter("events_dropped_total", "Events dropped because the event buffer was full.", func(s *conn.Stats) uint64 { return s.EventsDropped })
	counter("published_total", "Messages written to the broker by publishers, republications included.", func(s *conn.Stats) uint64 { return s.Published })
	counter("confirmed_total", "Messages the broker acknowledged (basic.ack).", func(s *conn.Stats) uint64 { return s.Confirmed })
	counter("nacked_total", "Messages the broker refused (basic.nack).", func(s *conn.Stats) uint64 { return s.Nacked })
	counter("republished_total", "Messages published again because their connection died before the confirm.", func(s *conn.Stats) uint64 { return s.Republished })
	counter("returned_total", "Mandatory messages the broker returned as unroutable.", func(s *conn.Stats) uint64 { return s.Returned })
	counter("delivered_total", "Deliveries handed to consumer handlers.", func(s *conn.Stats) uint64 { return s.Delivered })
	counter("handler_errors_total", "Consumer handler calls that returned an error.", func(s *conn.Stats) uint64 { return s.HandlerErrors })
	counter("handler_panics_total", "Consumer handler calls that panicked.", func(s *conn.Stats) uint64 { return s.HandlerPanics })
	m.state = desc("connection_state", "1 for the supervisor's current state, 0 for the others.", "state")
	m.stateTime = desc("state_seconds_total", "Time spent in each state.", "state")
	m.blocked = desc("connection_blocked", "1 while the broker blocks the connection (resource alarm).")

	ns := opts.Namespace
	m.published = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "publisher_messages_total",
		Help: "Messages settled per publisher, by outcome (acked, nacked, returned, failed).", ConstLabels: labels},
		[]string{"publisher", "outcome"})
	m.confirm = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "publish_confirm_seconds",
		Help: "Time from PublishAsync to the message's settlement (the broker's confirm, for acked).", ConstLabels: labels,
		Buckets: opts.Buckets}, []string{"publisher", "outcome"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "consumer_deliveries_total",
		Help: "Deliveries handled per consumer and queue, by outcome (ack, requeue, reject, retry).", ConstLabels: labels},
		[]string{"consumer", "queue", "outcome"})
	m.handling = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "handler_duration_seconds",
		Help: "Time to handle and settle a delivery.", ConstLabels: labels, Buckets: opts.Buckets},
		[]string{"consumer", "queue", "outcome"})
	m.outage = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "outage_seconds",
		Help: "Time from the loss of a Ready connection to Ready again.", ConstLabels: labels, Buckets: opts.OutageBuckets})
	m.dial = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "dial_seconds",
		Help: "Time of a connection attempt (dial, handshake, ready hooks), by result (ok, failed).", ConstLabels: labels,
		Buckets: opts.Buckets}, []string{"result"})
	return m
}

// Register is New(opts) registered on reg for sup.
func Register(reg prometheus.Registerer, sup *conn.Supervisor, opts Options) (*Metrics, error) {
	m := New(opts)
	if err := m.Register(reg, sup); err != nil {
		return nil, err
	}
	return m, nil
}

// ErrWatching is returned by Watch and Register for a Metrics that watches
// another Supervisor already.
var ErrWatching = errors.New("warrenprom: this Metrics watches another Supervisor")

// Watch makes m read sup's Stats when collected. A Metrics watches one
// Supervisor; watching the same one again does nothing.
func (m *Metrics) Watch(sup *conn.Supervisor) error {
	if !m.sup.CompareAndSwap(nil, sup) && m.sup.Load() != sup {
		return ErrWatching
	}
	return nil
}

// Register watches sup and registers m on reg.
func (m *Metrics) Register(reg prometheus.Registerer, sup *conn.Supervisor) error {
	if err := m.Watch(sup); err != nil {
		return err
	}
	return reg.Register(m)
}

// Describe sends the descriptors of every metric m collects.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range m.stats {
		ch <- s.desc
	}
	ch <- m.state
	ch <- m.stateTime
	ch <- m.blocked
	m.published.Describe(ch)
	m.confirm.Describe(ch)
	m.deliveries.Describe(ch)
	m.handling.Describe(ch)
	m.outage.Describe(ch)
	m.dial.Describe(ch)
}

// states are the Supervisor's states, for the state labels.
var states = [...]conn.State{conn.Connecting, conn.Ready, conn.Reconnecting, conn.Closing, conn.Closed}

// Collect reads the watched Supervisor's Stats (once per scrape) and sends
// every metric.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if sup := m.sup.Load(); sup != nil {
		st := sup.Stats()
		for _, s := range m.stats {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(s.read(&st)))
		}
		for _, state := range states {
			name := stateLabel(state)
			ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, boolValue(st.State == state), name)
			ch <- prometheus.MustNewConstMetric(m.stateTime, prometheus.CounterValue, st.TimeIn[state].Seconds(), name)
		}
		ch <- prometheus.MustNewConstMetric(m.blocked, prometheus.GaugeValue, boolValue(st.Blocked))
	}
	m.published.Collect(ch)
	m.confirm.Collect(ch)
	m.deliveries.Collect(ch)
	m.handling.Collect(ch)
	m.outage.Collect(ch)
	m.dial.Collect(ch)
}

// stateLabel is a state's label value, such as "ready".
func stateLabel(s conn.State) string {
	switch s {
	case conn.Connecting:
		return "connecting"
	case conn.Ready:
		return "ready"
	case conn.Reconnecting:
		return "reconnecting"
	case conn.Closing:
		return "closing"
	case conn.Closed:
		return "closed"
	}
	return s.String()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// eventClock turns events into outage and dial durations.
type eventClock struct {
	mu     sync.Mutex
	lostAt time.Time // when Ready was lost; zero while Ready or closing
	dueAt  time.Time // when the current connection attempt started; zero if none
}
