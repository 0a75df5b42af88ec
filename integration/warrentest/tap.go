package warrentest

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// tapCloseTimeout bounds closing the tap's connection at cleanup.
const tapCloseTimeout = 5 * time.Second

// Tap binds a server-named, exclusive queue to exchange with routing key
// key, and records the MessageId of every message routed there in l, until
// the test's cleanup. It sees a copy of what the service publishes without
// taking messages from the service's own queues. It dials rawURL directly
// (use the administrator's URL, not the service's user, so killing the
// service's connections leaves the tap alone). The exchange must exist.
// Messages published before Tap returns are not seen.
func Tap(t testing.TB, rawURL, exchange, key string, l *Ledger) {
	t.Helper()
	c, err := amqp.DialConfig(rawURL, amqp.Config{
		Dial:       amqp.DefaultDial(10 * time.Second),
		Properties: amqp.Table{"connection_name": "warrentest-tap-" + t.Name()},
	})
	if err != nil {
		t.Fatalf("warrentest: tap: dial: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = c.CloseDeadline(time.Now().Add(tapCloseTimeout))
		<-done
	})
	ch, err := c.Channel()
	if err != nil {
		close(done)
		t.Fatalf("warrentest: tap: channel: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err == nil {
		err = ch.QueueBind(q.Name, key, exchange, false, nil)
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(q.Name, "", true, true, false, false, nil)
	}
	if err != nil {
		close(done)
		t.Fatalf("warrentest: tap on exchange %q key %q: %v", exchange, key, err)
	}
	// The channel closes when the connection does (cleanup, or a fault
	// that kills it: the test then sees the loss in AssertNoLoss).
	go func() {
		defer close(done)
		for d := range deliveries {
			l.Received(d.MessageId)
		}
	}()
}
