package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestHandlerThatAcksItself: a handler calling d.Ack (the habit of every
// amqp091-go user) must not get its channel closed with 406 by warren's own
// second ack: three messages are handled exactly three times, the queue is
// empty, and the subscription never fails.
func TestHandlerThatAcksItself(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	var calls atomic.Int32
	got := make(chan amqp.Delivery, 8)
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		calls.Add(1)
		if err := d.Ack(true); err != nil { // multiple, even: it must settle d alone
			t.Errorf("the handler's Ack: %v", err)
		}
		got <- d
		return nil
	}, conn.ConsumerOptions{Name: "self-acking", Concurrency: 2})
	waitReady(t, s)
	adm.publish("", queue, "a", "b", "c")
	for i := 0; i < 3; i++ {
		receive(t, got, "each message once")
	}
	nothing(t, got, "after the three messages")
	if n := calls.Load(); n != 3 {
		t.Errorf("%d handler calls for 3 messages, want 3", n)
	}
	for _, e := range rec.Snapshot() {
		if e.Kind == conn.EventConsumerChannelClosed {
			t.Errorf("the consumer's channel was closed: %v", e.Err)
		}
	}
	if n := adm.messages(queue); n != 0 {
		t.Errorf("%d messages left in the queue, want 0", n)
	}
}
