package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warrenmq/warren/conn"
	warrenotel "github.com/warrenmq/warren/contrib/otel"
)

// The values of TRACES.
const (
	tracesOff    = "off"
	tracesStdout = "stdout"
	tracesOTLP   = "otlp"
)

// tracing is the service's OpenTelemetry tracing: a span per POST /orders,
// a producer span per publish (its child), a consumer span per delivery
// (the producer span's child, through the message's traceparent header).
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// inst is warren's instrumentation; nil when tracing is off, so that a
	// publish and a delivery pay nothing for it.
	inst *warrenotel.Instrumentation
	// shutdown flushes the spans still buffered and stops the exporter;
	// it does nothing for a provider the service did not make.
	shutdown func(context.Context) error
}

// newTracing sets up TRACES: off, stdout (one JSON object per span on out)
// or otlp (otlptracehttp, configured by the standard OTEL_EXPORTER_OTLP_*
// variables). cfg.TracerProvider, set by code that embeds run, wins over
// TRACES and is not shut down here.
func newTracing(cfg config, out io.Writer) (*tracing, error) {
	t := &tracing{prop: propagation.TraceContext{}, shutdown: func(context.Context) error { return nil }}
	tp := cfg.TracerProvider
	if tp == nil {
		var exp sdktrace.SpanExporter
		var err error
		switch cfg.Traces {
		case tracesOff, "":
			t.tracer = noop.NewTracerProvider().Tracer("")
			return t, nil
		case tracesStdout:
			exp, err = stdouttrace.New(stdouttrace.WithWriter(out))
		case tracesOTLP:
			// New connects lazily: an unreachable collector costs dropped
			// spans and the exporter's own retries, never a failed start.
			exp, err = otlptracehttp.New(context.Background())
		default:
			err = fmt.Errorf("TRACES %q: want off, stdout or otlp", cfg.Traces)
		}
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		// The batcher bounds its queue (2048 spans by default) and drops
		// spans when it is full: an exporter that cannot keep up never
		// slows orders down.
		sdk := sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.Name))),
		)
		tp, t.shutdown = sdk, sdk.Shutdown
	}
	t.tracer = tp.Tracer("github.com/warrenmq/warren/examples/service")
	inst, err := warrenotel.New(warrenotel.Options{TracerProvider: tp, Propagator: t.prop})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", errors.Join(err, t.shutdown(context.Background())))
	}
	t.inst = inst
	return t, nil
}

// interceptors are the publisher's interceptors for tracing: none when off.
func (t *tracing) interceptors() []conn.PublishInterceptor {
	if t.inst == nil {
		return nil
	}
	return []conn.PublishInterceptor{t.inst.PublishInterceptor()}
}

// middleware is the consumer's middleware for tracing: none when off.
func (t *tracing) middleware() []conn.HandlerMiddleware {
	if t.inst == nil {
		return nil
	}
	return []conn.HandlerMiddleware{t.inst.HandlerMiddleware()}
}

// traceRequests wraps next in a server span per request, child of the
// client's span when the request carries a traceparent header; the publish
// made while handling it is the span's child. Off, it is next itself.
func (t *tracing) traceRequests(route string, next http.HandlerFunc) http.Handler {
	if t.inst == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	})
}

// statusWriter remembers the status code written, for the span.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
