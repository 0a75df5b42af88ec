package conn

import (
	"context"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkPublishInterceptors is the publish path of BenchmarkPublisherVsRaw
// (window 256, in-process fake broker that acks at once) with no
// interceptor, which must cost nothing over a Publisher without the option,
// and with one trivial interceptor, which shows the price of the chain
// itself: a copy of the headers, the settle queue and its goroutine.
func BenchmarkPublishInterceptors(b *testing.B) {
	trivial := func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
		return ctx, func(PublishResult) {}
	}
	for _, bc := range []struct {
		name string
		ics  []PublishInterceptor
	}{
		{"none", nil},
		{"trivial", []PublishInterceptor{trivial}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchPublish(b, PublisherOptions{MaxInFlight: 256, Interceptors: bc.ics}) })
	}
}

// benchPublish publishes b.N messages through a Publisher with opts, keeping
// its window full.
func benchPublish(b *testing.B, opts PublisherOptions) {
	fb := startPubFakeBroker(b)
	s, err := New(Options{URLs: []string{fb.url()}, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer closeNow(b, s)
	ctx := context.Background()
	if err := s.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	p, err := s.NewPublisher(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	msg := amqp.Publishing{Body: make([]byte, 100)}
	ring := make([]*Confirmation, opts.MaxInFlight)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c := ring[i%len(ring)]; c != nil {
			if err := c.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		c, err := p.PublishAsync(ctx, "", "q", msg)
		if err != nil {
			b.Fatal(err)
		}
		ring[i%len(ring)] = c
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
	// CPU time per message, of the whole process (the fake broker
	// included): less sensitive than wall time to other processes on a
	// loaded machine.
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
