package publisher_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

const (
	// benchWindow is the in-flight window of both publishers.
	benchWindow = 256
	// benchBodySize is the size of each message body.
	benchBodySize = 100
	// benchChunk is how many messages one side publishes before the
	// interleaved benchmark switches to the other.
	benchChunk = 2000
	// benchTimeout bounds one benchmark run.
	benchTimeout = 10 * time.Minute
)

// BenchmarkPublishConfirmed publishes 100-byte persistent messages to a
// durable queue with publisher confirms and 256 messages in flight, once
// with raw amqp091-go on a confirm channel and once with a warren Publisher.
// The target is warren >= 0.95x raw msgs/s. The machine is shared and the
// broker runs on it, so consecutive runs differ widely: read the ratio from
// BenchmarkPublishConfirmedInterleaved, which measures both sides in the
// same time window.
func BenchmarkPublishConfirmed(b *testing.B) {
	br := broker.Shared(b)
	admin := rawConn(b, br)
	queue := declareQueue(b, admin, nil)
	msg := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: make([]byte, benchBodySize)}
	for _, side := range []struct {
		name string
		open func(b *testing.B, br *broker.Broker) benchPublisher
	}{{"raw", openRaw}, {"warren", openWarren}} {
		b.Run(side.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
			defer cancel()
			p := side.open(b, br)
			defer p.close(b)
			b.ReportAllocs()
			b.ResetTimer()
			if err := p.publish(ctx, queue, msg, b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			purge(b, admin, queue)
		})
	}
}

// BenchmarkPublishConfirmedInterleaved publishes b.N messages with each of
// raw amqp091-go and warren, alternating in chunks of 2,000 so that both see
// the same machine load and broker state, and reports each side's msgs/s
// and their ratio (warren/raw; the target is >= 0.95). Persistent messages
// wait for the broker's fsync, which hides client costs; the transient case
// shows them.
func BenchmarkPublishConfirmedInterleaved(b *testing.B) {
	br := broker.Shared(b)
	admin := rawConn(b, br)
	queue := declareQueue(b, admin, nil)
	for _, mode := range []struct {
		name string
		mode uint8
	}{{"persistent", amqp.Persistent}, {"transient", amqp.Transient}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
			defer cancel()
			msg := amqp.Publishing{DeliveryMode: mode.mode, Body: make([]byte, benchBodySize)}
			raw, warren := openRaw(b, br), openWarren(b, br)
			defer raw.close(b)
			defer warren.close(b)
			var took [2]time.Duration
			sides := [2]benchPublisher{raw, warren}
			b.ResetTimer()
			for done, round := 0, 0; done < b.N; round++ {
				n := min(benchChunk, b.N-done)
				for k := range sides {
					i := (k + round) % 2 // alternate which side goes first
					begin := time.Now()
					if err := sides[i].publish(ctx, queue, msg, n); err != nil {
						b.Fatal(err)
					}
					took[i] += time.Since(begin)
				}
				done += n
				// The same, short queue for every chunk: a queue that grows
				// through the run would slow its later chunks.
				b.StopTimer()
				purge(b, admin, queue)
				b.StartTimer()
			}
			b.StopTimer()
			rawRate := float64(b.N) / took[0].Seconds()
			warrenRate := float64(b.N) / took[1].Seconds()
			b.ReportMetric(rawRate, "raw-msgs/s")
			b.ReportMetric(warrenRate, "warren-msgs/s")
			b.ReportMetric(warrenRate/rawRate, "ratio")
		})
	}
}

// benchPublisher publishes n messages and waits for all their confirms.
type benchPublisher interface {
	publish(ctx context.Context, queue string, msg amqp.Publishing, n int) error
	close(b *testing.B)
}

func purge(b *testing.B, admin *amqp.Connection, queue string) {
	ch, err := admin.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueuePurge(queue, false); err != nil {
		b.Fatal(err)
	}
}

// rawPub is the baseline: the usual amqp091-go confirm loop, a semaphore of
// benchWindow slots released by a NotifyPublish reader.
type rawPub struct {
	ch         *amqp.Channel
	sem        chan struct{}
	acked      chan bool // one per confirm, after its slot is released
	readerDone chan struct{}
}

func openRaw(b *testing.B, br *broker.Broker) benchPublisher {
	c := rawConn(b, br)
	ch, err := c.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	r := &rawPub{
		ch:         ch,
		sem:        make(chan struct{}, benchWindow),
		acked:      make(chan bool, benchWindow),
		readerDone: make(chan struct{}),
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, benchWindow))
	go func() {
		defer close(r.readerDone)
		for cf := range confirms {
			<-r.sem
			r.acked <- cf.Ack
		}
	}()
	return r
}

func (r *rawPub) publish(ctx context.Context, queue string, msg amqp.Publishing, n int) error {
	sent, settled := 0, 0
	for settled < n {
		if sent < n {
			select {
			case r.sem <- struct{}{}:
				if err := r.ch.PublishWithContext(ctx, "", queue, false, false, msg); err != nil {
					return err
				}
				sent++
				continue
			case ack := <-r.acked:
				if !ack {
					return conn.ErrNacked
				}
				settled++
				continue
			}
		}
		select {
		case ack := <-r.acked:
			if !ack {
				return conn.ErrNacked
			}
			settled++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *rawPub) close(b *testing.B) {
	_ = r.ch.Close()
	<-r.readerDone
}

// warrenPub publishes through a Publisher: PublishAsync waits for room in
// its own window, and each confirmation is checked.
type warrenPub struct {
	s    *conn.Supervisor
	p    *conn.Publisher
	ring []*conn.Confirmation
}

func openWarren(b *testing.B, br *broker.Broker) benchPublisher {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	s, err := conn.New(conn.Options{URLs: []string{br.URL}, Logger: quietLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	p, err := s.NewPublisher(ctx, conn.PublisherOptions{MaxInFlight: benchWindow})
	if err != nil {
		b.Fatal(err)
	}
	return &warrenPub{s: s, p: p, ring: make([]*conn.Confirmation, benchWindow)}
}

func (w *warrenPub) publish(ctx context.Context, queue string, msg amqp.Publishing, n int) error {
	for i := 0; i < n; i++ {
		slot := i % benchWindow
		if c := w.ring[slot]; c != nil {
			if err := c.Wait(ctx); err != nil {
				return err
			}
		}
		c, err := w.p.PublishAsync(ctx, "", queue, msg)
		if err != nil {
			return err
		}
		w.ring[slot] = c
	}
	for i, c := range w.ring {
		if c != nil {
			if err := c.Wait(ctx); err != nil {
				return err
			}
			w.ring[i] = nil
		}
	}
	return nil
}

func (w *warrenPub) close(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := w.s.Close(ctx); err != nil {
		b.Error(err)
	}
}
