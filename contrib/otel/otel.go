package warrenotel

import (
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of the tracer and the meter.
const scope = "github.com/warrenmq/warren/contrib/otel"

// Options configures an Instrumentation. The zero value of every field
// means its default.
type Options struct {
	// TracerProvider makes the spans. Defaults to otel.GetTracerProvider()
	// at New.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments. Defaults to
	// otel.GetMeterProvider() at New.
	MeterProvider metric.MeterProvider
	// Propagator injects trace context into message headers and extracts
	// it. Defaults to otel.GetTextMapPropagator() at New; note that the
	// global one propagates nothing until the application sets one, such
	// as propagation.TraceContext{}.
	Propagator propagation.TextMapPropagator
	// Attributes are added to every span and measurement, e.g. the
	// service's connection name. Defaults to none.
	Attributes []attribute.KeyValue
}

// Instrumentation makes the spans and measurements of warren publishers and
// consumers. Create it with New; it is safe for concurrent use.
type Instrumentation struct {
	tracer trace.Tracer
	meter  metric.Meter
	prop   propagation.TextMapPropagator
	attrs  []attribute.KeyValue

	sent     metric.Int64Counter
	sendTime metric.Float64Histogram
	consumed metric.Int64Counter
	process  metric.Float64Histogram
	outage   metric.Float64Histogram
	dial     metric.Float64Histogram
	measured metric.MeasurementOption // attrs, for every measurement
	pubSets  attrCache                // measurement attributes per publisher and outcome
	conSets  attrCache                // measurement attributes per consumer, queue and outcome
}

// New returns an Instrumentation, or an error if an instrument cannot be
// created.
func New(opts Options) (*Instrumentation, error) {
	if opts.TracerProvider == nil {
		opts.TracerProvider = otel.GetTracerProvider()
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = otel.GetMeterProvider()
	}
	if opts.Propagator == nil {
		opts.Propagator = otel.GetTextMapPropagator()
	}
	i := &Instrumentation{
		tracer:   opts.TracerProvider.Tracer(scope),
		meter:    opts.MeterProvider.Meter(scope),
		prop:     opts.Propagator,
		attrs:    append([]attribute.KeyValue(nil), opts.Attributes...),
		measured: metric.WithAttributes(opts.Attributes...),
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	i.sent, err = i.meter.Int64Counter("messaging.client.sent.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages a publisher settled, by warren.publish.outcome."))
	note(err)
	i.sendTime, err = i.meter.Float64Histogram("messaging.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from PublishAsync to the message's settlement (the broker's confirm, when acked)."))
	note(err)
	i.consumed, err = i.meter.Int64Counter("messaging.client.consumed.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries a consumer handled, by warren.delivery.outcome."))
	note(err)
	i.process, err = i.meter.Float64Histogram("messaging.process.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to handle and settle a delivery."))
	note(err)
	i.outage, err = i.meter.Float64Histogram("warren.outage.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from the loss of a Ready connection to Ready again."))
	note(err)
	i.dial, err = i.meter.Float64Histogram("warren.dial.duration", metric.WithUnit("s"),
		metric.WithDescription("Time of a connection attempt (dial, handshake, ready hooks), by warren.dial.result."))
	note(err)
	if len(errs) > 0 {
		return nil, fmt.Errorf("warrenotel: instruments: %v", errs)
	}
	return i, nil
}
