package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenmq/warren/integration/broker"
)

// TestMetricsAndTraces posts a random number of orders and checks what an
// operator sees afterwards: /metrics holds warrenprom's counts for the
// publishing connection exactly (as many published and confirmed as
// orders, through Stats and through the interceptor), the handler-duration
// histogram has one observation per order, and each order is one trace in
// which the consumer span is the child of the producer span, itself the
// child of the POST's server span.
func TestMetricsAndTraces(t *testing.T) {
	b := broker.Shared(t)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	seed := time.Now().UnixNano()
	n := 3 + rand.New(rand.NewPCG(uint64(seed), 0)).IntN(8)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	cfg := config{URLs: []string{b.URL}, Name: fmt.Sprintf("observe-%d", seed), HTTPAddr: "127.0.0.1:0",
		Queue: fmt.Sprintf("observe-orders-%d", seed), ShutdownTimeout: 10 * time.Second, TracerProvider: tp}
	addr, stop := startService(t, cfg)
	defer stop()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitHealthy(t, client, addr)

	for range n {
		if _, ok := postOrder(ctx, t, client, addr); !ok {
			t.Fatalf("seed %d: an order was never confirmed", seed)
		}
	}
	// The consumer span and the handler histogram are recorded once a
	// delivery is settled, after the handler: wait for both.
	consumer := fmt.Sprintf(`consumer=%q`, cfg.Name+"-orders")
	var page string
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		page = scrapeAll(ctx, t, client, addr)
		if metricValue(page, "warren_handler_duration_seconds_count", `connection="consume"`, consumer, `outcome="ack"`) == float64(n) &&
			len(spansOfKind(exp.GetSpans(), trace.SpanKindConsumer)) == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("seed %d: %d orders not all consumed, observed and traced within 30s; /metrics:\n%s\nspans: %d",
				seed, n, page, len(exp.GetSpans()))
		case <-tick.C:
		}
	}

	for _, want := range []struct {
		name   string
		labels []string
	}{
		{"warren_published_total", []string{`connection="publish"`}},
		{"warren_confirmed_total", []string{`connection="publish"`}},
		{"warren_publisher_messages_total", []string{`connection="publish"`, `publisher="orders-http"`, `outcome="acked"`}},
		{"warren_publish_confirm_seconds_count", []string{`connection="publish"`, `publisher="orders-http"`, `outcome="acked"`}},
		{"warren_delivered_total", []string{`connection="consume"`}},
		{"warren_consumer_deliveries_total", []string{`connection="consume"`, consumer, `outcome="ack"`}},
		{"orders_consumed_total", nil},
		{"orders_responses_total", []string{`outcome="accepted"`}},
	} {
		if got := metricValue(page, want.name, want.labels...); got != float64(n) {
			t.Errorf("seed %d: %s%v = %v, want %d", seed, want.name, want.labels, got, n)
		}
	}
	for _, name := range []string{"warren_republished_total", "warren_nacked_total", "warren_returned_total"} {
		if got := metricValue(page, name, `connection="publish"`); got != 0 {
			t.Errorf("seed %d: %s = %v, want 0", seed, name, got)
		}
	}
	if got := metricValue(page, "warren_connection_state", `connection="publish"`, `state="ready"`); got != 1 {
		t.Errorf("seed %d: publish connection's ready state = %v, want 1", seed, got)
	}

	spans := exp.GetSpans()
	servers, producers := spansOfKind(spans, trace.SpanKindServer), spansOfKind(spans, trace.SpanKindProducer)
	if len(servers) != n || len(producers) != n {
		t.Fatalf("seed %d: %d server and %d producer spans, want %d of each", seed, len(servers), len(producers), n)
	}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	traces := map[trace.TraceID]bool{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
		traces[s.SpanContext.TraceID()] = true
	}
	if len(traces) != n {
		t.Errorf("seed %d: %d traces, want one per order (%d)", seed, len(traces), n)
	}
	for _, c := range spansOfKind(spans, trace.SpanKindConsumer) {
		p, ok := byID[c.Parent.SpanID()]
		if !ok || p.SpanKind != trace.SpanKindProducer || p.SpanContext.TraceID() != c.SpanContext.TraceID() {
			t.Errorf("seed %d: consumer span %q's parent is %q (%v), want a producer span of its trace", seed, c.Name, p.Name, p.SpanKind)
			continue
		}
		if s, ok := byID[p.Parent.SpanID()]; !ok || s.SpanKind != trace.SpanKindServer || s.Name != "POST /orders" {
			t.Errorf("seed %d: producer span %q's parent is %q (%v), want the server span POST /orders", seed, p.Name, s.Name, s.SpanKind)
		}
	}
}

func spansOfKind(spans tracetest.SpanStubs, kind trace.SpanKind) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == kind {
			out = append(out, s)
		}
	}
	return out
}

// scrapeAll returns the /metrics page.
func scrapeAll(ctx context.Context, t *testing.T, client *http.Client, addr string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	return string(body)
}

// metricValue is the value of the sample of name whose labels include each
// of labels (written name="value"), or -1 if there is none.
func metricValue(page, name string, labels ...string) float64 {
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, ls, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(ls, l)
		}
		var v float64
		if _, err := fmt.Sscan(value, &v); match && err == nil {
			return v
		}
	}
	return -1
}
