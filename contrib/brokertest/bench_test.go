package brokertest

import (
	"context"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warrenmq/warren/conn"
	warrenotel "github.com/warrenmq/warren/contrib/otel"
	warrenprom "github.com/warrenmq/warren/contrib/prometheus"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

// BenchmarkPublishObserved publishes with confirms (window 256) to the real
// broker with no interceptor, with the Prometheus one, and with the otel one
// (every span sampled and recorded in memory), in one run so the ratios hold
// on a shared machine.
func BenchmarkPublishObserved(b *testing.B) {
	br := broker.Shared(b)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	}()
	inst, err := warrenotel.New(warrenotel.Options{TracerProvider: tp, MeterProvider: mp, Propagator: propagation.TraceContext{}})
	if err != nil {
		b.Fatal(err)
	}
	prom := warrenprom.New(warrenprom.Options{})
	for _, bc := range []struct {
		name string
		ics  []conn.PublishInterceptor
	}{
		{"none", nil},
		{"prometheus", []conn.PublishInterceptor{prom.PublishInterceptor()}},
		{"otel", []conn.PublishInterceptor{inst.PublishInterceptor()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sup, err := conn.New(conn.Options{URLs: []string{br.URL}, Logger: testkit.QuietLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
				defer cancel()
				_ = sup.Close(ctx)
			}()
			ctx := context.Background()
			if err := sup.WaitReady(ctx); err != nil {
				b.Fatal(err)
			}
			p, err := sup.NewPublisher(ctx, conn.PublisherOptions{MaxInFlight: 256, Interceptors: bc.ics})
			if err != nil {
				b.Fatal(err)
			}
			msg := amqp.Publishing{Body: make([]byte, 100)}
			ring := make([]*conn.Confirmation, 256)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if c := ring[i%len(ring)]; c != nil {
					if err := c.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
				// The default exchange with a key no queue has: the
				// broker confirms and drops it.
				c, err := p.PublishAsync(ctx, "", "warren-bench-nowhere", msg)
				if err != nil {
					b.Fatal(err)
				}
				ring[i%len(ring)] = c
				if i%1024 == 0 {
					spans.Reset()
				}
			}
			for _, c := range ring {
				if c != nil {
					if err := c.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is this process's user and system CPU time so far (the broker's
// is not included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
