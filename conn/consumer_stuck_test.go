package conn

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestStuckConsumeDoesNotHoldPublishers: after a reconnect the fake broker
// never answers the consumer's basic.consume, as a quorum queue's member
// that waits for a leader does not. The supervisor's publisher (a later
// hook phase) must be back and confirming while the consumer's
// subscription is still stuck: before, the consumer's ready hook held
// every later hook, and Ready, until the broker answered.
func TestStuckConsumeDoesNotHoldPublishers(t *testing.T) {
	b := startPubFakeBroker(t)
	b.mu.Lock()
	b.answerQos, b.consumeOKs = true, 1 // the first subscription only
	b.mu.Unlock()
	s := startFakeSupervisor(t, b, nil)
	ctx := pubTestCtx(t)
	p, err := s.NewPublisher(ctx, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// RequeueAlways: no retry queues to declare.
	if _, err := s.Consume(ctx, &Queue{Name: "q"}, func(context.Context, amqp.Delivery) error { return nil },
		ConsumerOptions{OnError: RequeueAlways}); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if err := p.Publish(ctx, "", "q", pubBody("before")); err != nil {
		t.Fatalf("Publish before the reconnect: %v", err)
	}

	latestFakeConn(t, b).kill()
	waitReadyAgain(t, s, 2)
	if err := p.Publish(ctx, "", "q", pubBody("after")); err != nil {
		t.Fatalf("Publish after the reconnect, with the consumer still stuck: %v", err)
	}
	// The connection's end releases the stuck subscription, and the next
	// one is served, so Close need not wait for consumeTimeout.
	b.mu.Lock()
	b.consumeOKs = 100
	b.mu.Unlock()
	latestFakeConn(t, b).kill()
}

// TestConsumeStallRetriesOnAFreshChannel: a basic.consume the broker never
// answers is given up after consumeTimeout and retried on a new channel
// (the stuck one is closed once the broker answers or the connection ends),
// instead of waiting for the connection's dead-peer limit.
func TestConsumeStallRetriesOnAFreshChannel(t *testing.T) {
	b := startPubFakeBroker(t)
	b.mu.Lock()
	b.answerQos = true
	b.mu.Unlock()
	events := make(chan Event, 64)
	s := startFakeSupervisor(t, b, func(e Event) {
		select {
		case events <- e:
		default:
		}
	})
	ctx := pubTestCtx(t)
	if _, err := s.Consume(ctx, &Queue{Name: "q"}, func(context.Context, amqp.Delivery) error { return nil },
		ConsumerOptions{OnError: RequeueAlways}); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(consumeTimeout + defaultTestTimeout)
	defer timer.Stop()
	for {
		select {
		case e := <-events:
			if e.Kind == EventConsumerChannelClosed && e.Err != nil {
				t.Logf("consumer event: %v", e.Err)
				if n := b.consumes(); n < 1 {
					t.Fatalf("%d basic.consume seen", n)
				}
				// The retry goes out on a fresh channel.
				deadline := time.NewTimer(defaultTestTimeout)
				defer deadline.Stop()
				for b.consumes() < 2 {
					select {
					case <-deadline.C:
						t.Fatal("no second basic.consume after the stall")
					case <-events:
					case <-time.After(10 * time.Millisecond):
					}
				}
				if chans := b.consumeChannels(); len(chans) < 2 || chans[0] == chans[1] {
					t.Fatalf("consumes on channels %v, want the retry on another channel", chans)
				}
				b.mu.Lock()
				b.consumeOKs = 100 // the next connection's consume is served
				b.mu.Unlock()
				latestFakeConn(t, b).kill() // releases the stuck retry before Close
				return
			}
		case <-timer.C:
			t.Fatal("no consumer failure reported after a basic.consume the broker never answered")
		}
	}
}
