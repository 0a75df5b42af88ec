package warrenotel

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/warrenmq/warren/conn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testInstrumentation returns an Instrumentation recording into memory.
func testInstrumentation(t *testing.T) (*Instrumentation, *tracetest.InMemoryExporter, *sdkmetric.ManualReader) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	inst, err := New(Options{TracerProvider: tp, MeterProvider: mp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	return inst, spans, reader
}

func attr(attrs []attribute.KeyValue, k string) string {
	for _, a := range attrs {
		if string(a.Key) == k {
			return a.Value.String()
		}
	}
	return ""
}

// TestPublishThenProcessIsOneTrace drives the interceptor and the
// middleware by hand: the consumer span's parent is the producer span,
// through the headers only, and both carry the semantic-convention
// attributes.
func TestPublishThenProcessIsOneTrace(t *testing.T) {
	inst, spans, reader := testInstrumentation(t)
	caller := amqp.Table{"k": "v"}
	msg := amqp.Publishing{MessageId: "m1", CorrelationId: "c1", Body: []byte("hello"), Headers: amqp.Table{"k": "v"}}
	pub := &conn.OutgoingPublish{Publisher: "orders", Exchange: "", RoutingKey: "q", Msg: &msg}
	_, settled := inst.PublishInterceptor()(context.Background(), pub)
	if msg.Headers["traceparent"] == nil {
		t.Fatalf("no traceparent header injected: %v", msg.Headers)
	}
	if len(caller) != 1 {
		t.Fatal("test bug")
	}
	settled(conn.PublishResult{Outcome: conn.PublishAcked, MessageID: "m1", Settled: time.Now()})

	d := amqp.Delivery{Headers: msg.Headers, MessageId: "m1", RoutingKey: "q", DeliveryTag: 9, Body: msg.Body}
	var handlerSpan trace.SpanContext
	next := func(ctx context.Context, _ conn.DeliveryInfo, _ amqp.Delivery) conn.HandleResult {
		handlerSpan = trace.SpanContextFromContext(ctx)
		return conn.HandleResult{Err: conn.Reject(errors.New("bad")), Outcome: conn.OutcomeReject, Settlement: conn.SettledReject}
	}
	inst.HandlerMiddleware()(next)(context.Background(), conn.DeliveryInfo{Consumer: "c", Queue: "q"}, d)

	got := spans.GetSpans()
	if len(got) != 2 {
		t.Fatalf("%d spans, want 2", len(got))
	}
	producer, consumer := got[0], got[1]
	if producer.SpanKind != trace.SpanKindProducer || producer.Name != "publish amq.default" || producer.Status.Code != codes.Ok {
		t.Errorf("producer span %q kind %v status %v", producer.Name, producer.SpanKind, producer.Status)
	}
	if consumer.SpanKind != trace.SpanKindConsumer || consumer.Name != "process q" || consumer.Status.Code != codes.Error {
		t.Errorf("consumer span %q kind %v status %v", consumer.Name, consumer.SpanKind, consumer.Status)
	}
	if consumer.Parent.SpanID() != producer.SpanContext.SpanID() || consumer.Parent.TraceID() != producer.SpanContext.TraceID() {
		t.Errorf("consumer parent %v, want the producer span %v", consumer.Parent, producer.SpanContext)
	}
	if handlerSpan.SpanID() != consumer.SpanContext.SpanID() {
		t.Error("the handler's context does not carry the consumer span")
	}
	for k, want := range map[string]string{
		"messaging.system": "rabbitmq", "messaging.operation.type": "send", "messaging.operation.name": "publish",
		"messaging.destination.name": "amq.default", "messaging.rabbitmq.destination.routing_key": "q",
		"messaging.message.id": "m1", "messaging.message.conversation_id": "c1", "warren.publish.outcome": "acked",
		"warren.publisher": "orders", "messaging.message.body.size": "5",
	} {
		if v := attr(producer.Attributes, k); v != want {
			t.Errorf("producer %s = %q, want %q", k, v, want)
		}
	}
	for k, want := range map[string]string{
		"messaging.system": "rabbitmq", "messaging.operation.type": "process", "messaging.destination.subscription.name": "q",
		"messaging.rabbitmq.message.delivery_tag": "9", "warren.delivery.outcome": "reject", "warren.delivery.settlement": "reject",
	} {
		if v := attr(consumer.Attributes, k); v != want {
			t.Errorf("consumer %s = %q, want %q", k, v, want)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			seen[m.Name] = true
		}
	}
	for _, name := range []string{"messaging.client.sent.messages", "messaging.client.operation.duration",
		"messaging.client.consumed.messages", "messaging.process.duration"} {
		if !seen[name] {
			t.Errorf("metric %s not recorded", name)
		}
	}
}

func TestCarrierReadsByteStrings(t *testing.T) {
	h := headerCarrier(amqp.Table{"a": "x", "b": []byte("y"), "c": 3})
	if h.Get("a") != "x" || h.Get("b") != "y" || h.Get("c") != "" || len(h.Keys()) != 3 {
		t.Errorf("carrier read %q %q %q %v", h.Get("a"), h.Get("b"), h.Get("c"), h.Keys())
	}
}

// TestEventHandlerTimesOutagesAndDials feeds a scripted event sequence: a
// failed dial, a first connection, a loss and a reconnection.
func TestEventHandlerTimesOutagesAndDials(t *testing.T) {
	inst, _, reader := testInstrumentation(t)
	onEvent := inst.EventHandler()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, e := range []conn.Event{
		{Kind: conn.EventStateChanged, State: conn.Connecting, Time: at(0)},
		{Kind: conn.EventDialFailed, Time: at(100), Delay: 200 * time.Millisecond},
		{Kind: conn.EventStateChanged, State: conn.Ready, Time: at(350)},
		{Kind: conn.EventStateChanged, State: conn.Reconnecting, Time: at(1000)},
		{Kind: conn.EventStateChanged, State: conn.Ready, Time: at(1500)},
		{Kind: conn.EventStateChanged, State: conn.Closing, Time: at(2000)},
	} {
		onEvent(e)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				continue
			}
			for _, dp := range h.DataPoints {
				result, _ := dp.Attributes.Value("warren.dial.result")
				got[m.Name+"/"+result.AsString()] = dp
			}
		}
	}
	for name, want := range map[string]struct {
		count uint64
		sum   float64
	}{
		"warren.outage.duration/": {1, 0.5},
		"warren.dial.duration/ok": {2, 0.55}, "warren.dial.duration/failed": {1, 0.1},
	} {
		dp := got[name]
		if dp.Count != want.count || dp.Sum < want.sum-0.001 || dp.Sum > want.sum+0.001 {
			t.Errorf("%s: %d observations, sum %.3f; want %d, %.3f", name, dp.Count, dp.Sum, want.count, want.sum)
		}
	}
}
