package conn

import (
	"context"
	"testing"

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
	b.Run("warren", func(b *testing.B) {
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
	})
}
