package conn

import (
	"context"
	"runtime"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkPublisherVsRaw publishes with confirms and a window of 256 to
// the in-process fake broker, which acks at once: with no real broker in
// the way it shows the client-side cost of a Publisher against the plain
// amqp091-go confirm loop. The real comparison, against RabbitMQ, is in
// integration/publisher.
func BenchmarkPublisherVsRaw(b *testing.B) {
	const window = 256
	msg := amqp.Publishing{Body: make([]byte, 100)}
	b.Run("raw", func(b *testing.B) {
		fb := startPubFakeBroker(b)
		c, err := amqp.Dial(fb.url())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.Confirm(false); err != nil {
			b.Fatal(err)
		}
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window))
		sem := make(chan struct{}, window)
		done := make(chan struct{})
		n := b.N
		go func() {
			got := 0
			for range confirms {
				<-sem
				if got++; got == n {
					close(done)
				}
			}
		}()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < n; i++ {
			sem <- struct{}{}
			if err := ch.Publish("", "q", false, false, msg); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		b.StopTimer()
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	})
	for _, tc := range []struct {
		name string
		// cancellable publishes with a context that can end, as callers
		// with a deadline or a shutdown signal do: the publisher then
		// watches each message's context.
		cancellable bool
	}{{"warren", false}, {"warren-cancellable-ctx", true}} {
		b.Run(tc.name, func(b *testing.B) { benchmarkWarrenPublish(b, msg, window, tc.cancellable) })
	}
}

func benchmarkWarrenPublish(b *testing.B, msg amqp.Publishing, window int, cancellable bool) {
	{
		fb := startPubFakeBroker(b)
		s, err := New(Options{URLs: []string{fb.url()}, Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer closeNow(b, s)
		ctx := context.Background()
		if cancellable {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		if err := s.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		p, err := s.NewPublisher(ctx, PublisherOptions{MaxInFlight: window})
		if err != nil {
			b.Fatal(err)
		}
		ring := make([]*Confirmation, window)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if c := ring[i%window]; c != nil {
				if err := c.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			c, err := p.PublishAsync(ctx, "", "q", msg)
			if err != nil {
				b.Fatal(err)
			}
			ring[i%window] = c
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
	}
}

// BenchmarkFleetHeap connects fleetN clients to the in-process fake broker,
// each a connection with a confirm-mode publishing channel, and reports the
// heap and goroutines each one holds once idle: raw is amqp091-go with a
// NotifyPublish listener goroutine, warren a Supervisor (with an OnEvent
// handler) and a Publisher. Both figures include the fake broker's own
// share (a goroutine and a read buffer per connection), alike for both, so
// compare the two rather than read either alone; `warren bench -scenarios
// fleet` measures against RabbitMQ.
func BenchmarkFleetHeap(b *testing.B) {
	const fleetN = 100
	measure := func(b *testing.B, connect func(fb *pubFakeBroker) func()) {
		fb := startPubFakeBroker(b)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var closers []func()
		for i := 0; i < fleetN; i++ {
			closers = append(closers, connect(fb))
		}
		time.Sleep(100 * time.Millisecond) // let start-up events and goroutines settle
		// Each GC halves the stacks of parked goroutines that use less than
		// a quarter of theirs; a long-running service has had many.
		for i := 0; i < 4; i++ {
			runtime.GC()
		}
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/fleetN, "heapB/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/fleetN, "goroutines/conn")
		b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/fleetN, "stackB/conn")
		for _, c := range closers {
			c()
		}
		for i := 0; i < b.N; i++ { // the figures are per fleet, not per op
		}
	}
	b.Run("raw", func(b *testing.B) {
		measure(b, func(fb *pubFakeBroker) func() {
			c, err := amqp.Dial(fb.url())
			if err != nil {
				b.Fatal(err)
			}
			ch, err := c.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Confirm(false); err != nil {
				b.Fatal(err)
			}
			confirms := ch.NotifyPublish(make(chan amqp.Confirmation, DefaultMaxInFlight))
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range confirms {
				}
			}()
			return func() { c.Close(); <-done }
		})
	})
	b.Run("warren", func(b *testing.B) {
		measure(b, func(fb *pubFakeBroker) func() {
			s, err := New(Options{URLs: []string{fb.url()}, Logger: discardLogger(), OnEvent: func(Event) {}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := s.WaitReady(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := s.NewPublisher(ctx, PublisherOptions{}); err != nil {
				b.Fatal(err)
			}
			return func() { closeNow(b, s) }
		})
	})
}
