package brokertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	warrenprom "github.com/warrenmq/warren/contrib/prometheus"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

// TestPrometheusCountsAKnownWorkload runs a workload whose every count is
// known (rounds of routable and unroutable mandatory publishes, all
// consumed, with the broker closing the connection between rounds), then
// gathers the registry and checks the exact counts and that every histogram
// has its observations.
func TestPrometheusCountsAKnownWorkload(t *testing.T) {
	const (
		rounds   = 3 // K = rounds-1 kills
		perRound = 10
		kills    = rounds - 1
	)
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	name := testkit.UniqueName("warren-prom")
	m := warrenprom.New(warrenprom.Options{Connection: name})
	sup := supervisor(t, b, name, conn.Options{OnEvent: m.OnEvent})
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg, sup); err != nil {
		t.Fatal(err)
	}
	q := declareQueue(ctx, t, b, sup, name)
	got := make(chan string, rounds*perRound)
	if _, err := sup.Consume(ctx, q, func(context.Context, amqp.Delivery) error { return nil }, conn.ConsumerOptions{
		Name: "c", OnError: conn.RequeueNever,
		Middleware: []conn.HandlerMiddleware{settled(got), m.HandlerMiddleware()},
	}); err != nil {
		t.Fatal(err)
	}
	pub, err := sup.NewPublisher(ctx, conn.PublisherOptions{Name: "p", Mandatory: true,
		Interceptors: []conn.PublishInterceptor{m.PublishInterceptor()}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for r := 0; r < rounds; r++ {
		if r > 0 {
			if err := b.Faults.CloseConnection(ctx, name); err != nil {
				t.Fatalf("kill %d: %v", r, err)
			}
			waitReconnected(ctx, t, sup, uint64(r))
		}
		for i := 0; i < perRound; i++ {
			if err := pub.Publish(ctx, "", q.Name, amqp.Publishing{Body: []byte(fmt.Sprint(r, "-", i))}); err != nil {
				t.Fatalf("round %d publish %d: %v", r, i, err)
			}
		}
		if err := pub.Publish(ctx, "", name+".nowhere", amqp.Publishing{}); !errors.Is(err, conn.ErrReturned) {
			t.Fatalf("round %d: unroutable publish = %v, want ErrReturned", r, err)
		}
		receive(ctx, t, got, perRound)
	}
	t.Logf("workload: %d rounds, %d kills in %v", rounds, kills, time.Since(start).Round(time.Millisecond))
	// Close first: the event dispatcher has delivered every event when
	// Close returns, so the outage and dial histograms are complete.
	closeSupervisor(t, sup)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	conns := fmt.Sprint(kills + 1)
	want := []struct {
		metric string
		labels string // k=v,k=v
		value  float64
	}{
		{"warren_dials_total", "", kills + 1},
		{"warren_dials_failed_total", "", 0},
		{"warren_connections_total", "", kills + 1},
		{"warren_reconnects_total", "", kills},
		{"warren_connections_lost_total", "", kills},
		{"warren_published_total", "", rounds * (perRound + 1)},
		{"warren_confirmed_total", "", rounds * (perRound + 1)},
		{"warren_returned_total", "", rounds},
		{"warren_nacked_total", "", 0},
		{"warren_republished_total", "", 0},
		{"warren_delivered_total", "", rounds * perRound},
		{"warren_handler_errors_total", "", 0},
		{"warren_connection_state", "state=closed", 1},
		{"warren_connection_state", "state=ready", 0},
		{"warren_publisher_messages_total", "publisher=p,outcome=acked", rounds * perRound},
		{"warren_publisher_messages_total", "publisher=p,outcome=returned", rounds},
		{"warren_publish_confirm_seconds", "publisher=p,outcome=acked", rounds * perRound},
		{"warren_publish_confirm_seconds", "publisher=p,outcome=returned", rounds},
		{"warren_consumer_deliveries_total", "consumer=c,queue=" + name + ",outcome=ack", rounds * perRound},
		{"warren_handler_duration_seconds", "consumer=c,queue=" + name + ",outcome=ack", rounds * perRound},
		{"warren_outage_seconds", "", kills},
		{"warren_dial_seconds", "result=ok", kills + 1},
	}
	for _, w := range want {
		v, ok := value(families, w.metric, "connection="+name+labelSep(w.labels)+w.labels)
		if !ok || v != w.value {
			t.Errorf("%s{%s} = %v (found %v), want %v", w.metric, w.labels, v, ok, w.value)
		}
	}
	if v, _ := value(families, "warren_state_seconds_total", "connection="+name+",state=ready"); v <= 0 {
		t.Errorf("no time in Ready recorded (connections %s)", conns)
	}
	for _, h := range []string{"warren_outage_seconds", "warren_publish_confirm_seconds", "warren_handler_duration_seconds", "warren_dial_seconds"} {
		if sum := histogramSum(families, h); sum <= 0 {
			t.Errorf("%s: sum of observations %v, want > 0", h, sum)
		}
	}
}

func labelSep(labels string) string {
	if labels == "" {
		return ""
	}
	return ","
}

// value returns the value of the series of metric with exactly labels
// ("k=v,k=v"): a counter's or gauge's value, a histogram's sample count.
func value(families []*dto.MetricFamily, metric, labels string) (float64, bool) {
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			if !sameLabels(pairs, strings.Split(labels, ",")) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func sameLabels(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	set := map[string]bool{}
	for _, s := range a {
		set[s] = true
	}
	for _, s := range b {
		if !set[s] {
			return false
		}
	}
	return true
}

// histogramSum is the sum of all observations of a histogram family.
func histogramSum(families []*dto.MetricFamily, metric string) float64 {
	sum := 0.0
	for _, f := range families {
		if f.GetName() == metric {
			for _, m := range f.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return sum
}
