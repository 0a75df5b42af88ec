package warrenprom

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/warrenmq/warren/conn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// unreadySupervisor returns a Supervisor dialing a closed port: it stays
// Connecting, enough to collect its Stats without a broker.
func unreadySupervisor(t *testing.T) *conn.Supervisor {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@" + addr + "/"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sup.Close(ctx)
	})
	return sup
}

// TestMetricsFollowConventions runs promlint over everything a Metrics
// exports and checks that every Stats counter is there.
func TestMetricsFollowConventions(t *testing.T) {
	sup := unreadySupervisor(t)
	reg := prometheus.NewPedanticRegistry()
	m, err := Register(reg, sup, Options{Connection: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	// Give the vectors a child each, so the linter sees them.
	ic := m.PublishInterceptor()
	_, settled := ic(context.Background(), &conn.OutgoingPublish{Publisher: "p"})
	settled(conn.PublishResult{Outcome: conn.PublishAcked, Settled: time.Now()})
	m.OnEvent(conn.Event{Kind: conn.EventStateChanged, State: conn.Reconnecting, Time: time.Now()})
	m.OnEvent(conn.Event{Kind: conn.EventStateChanged, State: conn.Ready, Time: time.Now()})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		for _, metric := range f.GetMetric() {
			found := false
			for _, l := range metric.GetLabel() {
				found = found || (l.GetName() == "connection" && l.GetValue() == "orders")
			}
			if !found {
				t.Errorf("%s has no connection label", f.GetName())
			}
		}
	}
	// Every Stats field but State, Blocked and TimeIn (gauges of their own)
	// is one counter.
	if want := 20; len(m.stats) != want {
		t.Errorf("%d Stats counters exported, want %d", len(m.stats), want)
	}
	for _, want := range []string{"warren_dials_total", "warren_connection_state", "warren_state_seconds_total",
		"warren_connection_blocked", "warren_publisher_messages_total", "warren_publish_confirm_seconds",
		"warren_outage_seconds", "warren_dial_seconds"} {
		if !names[want] {
			t.Errorf("%s missing", want)
		}
	}
	if _, err := Register(prometheus.NewRegistry(), sup, Options{}); err != nil {
		t.Errorf("a second Metrics of the same supervisor on another registry: %v", err)
	}
	if err := m.Watch(unreadySupervisor(t)); err != ErrWatching {
		t.Errorf("Watch of a second supervisor = %v, want ErrWatching", err)
	}
}

// TestEventsMakeOutageAndDialDurations feeds a scripted event sequence:
// a first connection after one failed dial, a loss, a reconnection.
func TestEventsMakeOutageAndDialDurations(t *testing.T) {
	m := New(Options{})
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, e := range []conn.Event{
		{Kind: conn.EventStateChanged, State: conn.Connecting, Time: at(0)},
		{Kind: conn.EventDialFailed, Time: at(100), Delay: 200 * time.Millisecond}, // failed dial of 0.1 s
		{Kind: conn.EventStateChanged, State: conn.Ready, Time: at(350)},           // ok dial of 0.05 s
		{Kind: conn.EventConnected, Time: at(351)},
		{Kind: conn.EventStateChanged, State: conn.Reconnecting, Time: at(1000)},
		{Kind: conn.EventStateChanged, State: conn.Ready, Time: at(1500)}, // outage 0.5 s, dial 0.5 s
		{Kind: conn.EventStateChanged, State: conn.Closing, Time: at(2000)},
	} {
		m.OnEvent(e)
	}
	want := `
# HELP warren_outage_seconds Time from the loss of a Ready connection to Ready again.
# TYPE warren_outage_seconds histogram
warren_outage_seconds_bucket{connection="default",le="0.1"} 0
warren_outage_seconds_bucket{connection="default",le="0.2"} 0
warren_outage_seconds_bucket{connection="default",le="0.4"} 0
warren_outage_seconds_bucket{connection="default",le="0.8"} 1
warren_outage_seconds_bucket{connection="default",le="1.6"} 1
warren_outage_seconds_bucket{connection="default",le="3.2"} 1
warren_outage_seconds_bucket{connection="default",le="6.4"} 1
warren_outage_seconds_bucket{connection="default",le="12.8"} 1
warren_outage_seconds_bucket{connection="default",le="25.6"} 1
warren_outage_seconds_bucket{connection="default",le="51.2"} 1
warren_outage_seconds_bucket{connection="default",le="102.4"} 1
warren_outage_seconds_bucket{connection="default",le="204.8"} 1
warren_outage_seconds_bucket{connection="default",le="409.6"} 1
warren_outage_seconds_bucket{connection="default",le="819.2"} 1
warren_outage_seconds_bucket{connection="default",le="+Inf"} 1
warren_outage_seconds_sum{connection="default"} 0.5
warren_outage_seconds_count{connection="default"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "warren_outage_seconds"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m, "warren_dial_seconds"); n != 2 {
		t.Errorf("%d dial series, want ok and failed", n)
	}
	h := &histo{}
	h.read(t, m, "warren_dial_seconds", "ok")
	if h.count != 2 || h.sum < 0.549 || h.sum > 0.551 {
		t.Errorf("ok dials: %d, %.3f s; want 2, 0.55 s", h.count, h.sum)
	}
	h.read(t, m, "warren_dial_seconds", "failed")
	if h.count != 1 || h.sum < 0.099 || h.sum > 0.101 {
		t.Errorf("failed dials: %d, %.3f s; want 1, 0.1 s", h.count, h.sum)
	}
}

// histo reads one histogram series.
type histo struct {
	count uint64
	sum   float64
}

func (h *histo) read(t *testing.T, c prometheus.Collector, name, labelValue string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	*h = histo{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetValue() == labelValue {
					h.count, h.sum = metric.GetHistogram().GetSampleCount(), metric.GetHistogram().GetSampleSum()
				}
			}
		}
	}
}
