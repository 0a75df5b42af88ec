package warrenotel

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
)

// BenchmarkInterceptor is what the otel interceptor adds to each publish on
// top of conn's BenchmarkPublishInterceptors/trivial: a sampled producer
// span (recorded by an in-memory exporter, reset as it goes), the
// trace-context headers and two measurements, from interception to
// settlement.
func BenchmarkInterceptor(b *testing.B) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	}()
	inst, err := New(Options{TracerProvider: tp, MeterProvider: mp, Propagator: propagation.TraceContext{}})
	if err != nil {
		b.Fatal(err)
	}
	ic := inst.PublishInterceptor()
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := amqp.Publishing{MessageId: "m", Body: make([]byte, 100)}
		_, settled := ic(ctx, &conn.OutgoingPublish{Publisher: "p", RoutingKey: "q", Msg: &msg})
		settled(conn.PublishResult{Outcome: conn.PublishAcked, MessageID: "m", Written: true, Settled: time.Now()})
		if i%1024 == 0 {
			spans.Reset()
		}
	}
	b.StopTimer()
	// CPU time per message: less sensitive than wall time to the other
	// processes of a loaded machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
