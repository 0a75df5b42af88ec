package brokertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenmq/warren/conn"
	warrenotel "github.com/warrenmq/warren/contrib/otel"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

// TestTraceCrossesTheBroker: a trace started before Publish on one
// supervisor is the parent of the producer span, which is the parent of the
// consumer span in another supervisor, through the broker and the message
// headers only; a message the consumer sends through a retry queue is
// processed again under the same producer span.
func TestTraceCrossesTheBroker(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	}()
	inst, err := warrenotel.New(warrenotel.Options{TracerProvider: tp, MeterProvider: mp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}

	pubName, conName := testkit.UniqueName("warren-otel-pub"), testkit.UniqueName("warren-otel-con")
	supP := supervisor(t, b, pubName, conn.Options{OnEvent: inst.EventHandler()})
	supC := supervisor(t, b, conName, conn.Options{})
	reg, err := inst.ObserveStats(supP)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Unregister() }()
	const retryDelay = 50 * time.Millisecond
	q := declareQueue(ctx, t, b, supC, conName, conn.RetryQueueName(conName, retryDelay), conName+".dead")

	var mu sync.Mutex
	handled := map[string][]trace.SpanContext{} // body -> the handler's span per delivery
	handler := func(ctx context.Context, d amqp.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		body := string(d.Body)
		handled[body] = append(handled[body], trace.SpanContextFromContext(ctx))
		if body == "retry-me" && len(handled[body]) == 1 {
			return conn.RetryAfter(0, errors.New("try again"))
		}
		return nil
	}
	got := make(chan string, 4)
	if _, err := supC.Consume(ctx, q, handler, conn.ConsumerOptions{
		Name:       "c",
		Retry:      conn.RetryPolicy{Delays: []time.Duration{retryDelay}},
		Middleware: []conn.HandlerMiddleware{settled(got), inst.HandlerMiddleware()},
	}); err != nil {
		t.Fatal(err)
	}
	pub, err := supP.NewPublisher(ctx, conn.PublisherOptions{Name: "p",
		Interceptors: []conn.PublishInterceptor{inst.PublishInterceptor()}})
	if err != nil {
		t.Fatal(err)
	}

	for _, sup := range []*conn.Supervisor{supP, supC} {
		if err := sup.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reqCtx, root := tp.Tracer("test").Start(ctx, "request")
	for _, body := range []string{"plain", "retry-me"} {
		if err := pub.Publish(reqCtx, "", q.Name, amqp.Publishing{MessageId: body, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	root.End()
	for n := 0; n < 3; n++ {
		select {
		case <-got:
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("received %d of 3 deliveries: %v; handled %d plain, %d retry-me; consuming supervisor %+v",
				n, ctx.Err(), len(handled["plain"]), len(handled["retry-me"]), supC.Stats())
		}
	}

	byID := map[string]sdktrace.ReadOnlySpan{}
	var consumers []tracetest.SpanStub
	for _, s := range spans.GetSpans() {
		switch s.SpanKind {
		case trace.SpanKindProducer:
			byID[attrOf(s.Attributes, "messaging.message.id")] = s.Snapshot()
		case trace.SpanKindConsumer:
			consumers = append(consumers, s)
		}
	}
	for _, id := range []string{"plain", "retry-me"} {
		p := byID[id]
		if p == nil {
			t.Fatalf("no producer span for %s", id)
		}
		if p.Parent().SpanID() != root.SpanContext().SpanID() || p.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("producer span of %s has parent %v, want the request span %v", id, p.Parent(), root.SpanContext())
		}
		if attrOf(p.Attributes(), "warren.publish.outcome") != "acked" {
			t.Errorf("producer span of %s: outcome %q", id, attrOf(p.Attributes(), "warren.publish.outcome"))
		}
	}
	if len(consumers) != 3 {
		t.Fatalf("%d consumer spans, want 3 (plain, retry-me twice)", len(consumers))
	}
	outcomes := map[string][]string{}
	for _, c := range consumers {
		id := attrOf(c.Attributes, "messaging.message.id")
		p := byID[id]
		if p == nil || c.Parent.SpanID() != p.SpanContext().SpanID() || c.SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("consumer span of %s has parent %v, want its producer span", id, c.Parent)
		}
		if c.Name != "process "+conName || attrOf(c.Attributes, "messaging.destination.subscription.name") != conName {
			t.Errorf("consumer span %q attributes %v", c.Name, c.Attributes)
		}
		outcomes[id] = append(outcomes[id], attrOf(c.Attributes, "warren.delivery.outcome"))
	}
	if o := outcomes["retry-me"]; len(o) != 2 || o[0] != "retry" || o[1] != "ack" {
		t.Errorf("retry-me outcomes %v, want [retry ack]", o)
	}
	mu.Lock()
	for body, scs := range handled {
		for _, sc := range scs {
			if sc.TraceID() != root.SpanContext().TraceID() {
				t.Errorf("handler of %s ran outside the request's trace", body)
			}
		}
	}
	mu.Unlock()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n := sumInt(rm, "messaging.client.sent.messages"); n != 2 {
		t.Errorf("messaging.client.sent.messages = %d, want 2", n)
	}
	if n := sumInt(rm, "messaging.client.consumed.messages"); n != 3 {
		t.Errorf("messaging.client.consumed.messages = %d, want 3", n)
	}
	if n := sumInt(rm, "warren.confirmed"); n != 2 {
		t.Errorf("warren.confirmed of the publishing supervisor = %d, want 2", n)
	}
	if n := histCount(rm, "warren.dial.duration"); n != 1 {
		t.Errorf("warren.dial.duration has %d observations, want 1", n)
	}
}

func attrOf(attrs []attribute.KeyValue, k string) string {
	for _, a := range attrs {
		if string(a.Key) == k {
			return a.Value.String()
		}
	}
	return ""
}

// sumInt sums the data points of an int64 sum metric.
func sumInt(rm metricdata.ResourceMetrics, name string) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// histCount counts the observations of a float64 histogram.
func histCount(rm metricdata.ResourceMetrics, name string) uint64 {
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					n += dp.Count
				}
			}
		}
	}
	return n
}
