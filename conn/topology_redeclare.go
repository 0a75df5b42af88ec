package conn

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// adoptQueues records t as the owner of its queues, so that a consumer that
// finds one of them deleted can declare it again (redeclare).
func (t *Topology) adoptQueues() {
	for _, q := range t.Queues {
		q.owner.Store(t)
	}
}

// redeclare declares q again on c, with the exchanges and bindings of its
// owning Topology that route to it, the way the RabbitMQ Java client's
// topology recovery does when a queue vanished between two connections. It
// reports false when no Topology owns q: a queue declared elsewhere is not
// warren's to recreate.
func (q *Queue) redeclare(c *amqp.Connection) (bool, error) {
	t := q.owner.Load()
	if t == nil {
		return false, nil
	}
	sub := Topology{Queues: []*Queue{q}}
	needed := make(map[string]bool)
	for _, b := range t.Bindings {
		if b.Queue == q {
			sub.Bindings = append(sub.Bindings, b)
			needed[b.Exchange] = true
		}
	}
	for _, e := range t.Exchanges {
		if needed[e.Name] {
			sub.Exchanges = append(sub.Exchanges, e)
		}
	}
	// Declare (the user's callback) is not rerun: it may do anything, and a
	// consumer's recovery must not surprise it.
	return true, declareTopology(context.Background(), c, sub)
}

// isNotFound reports a broker 404 NOT_FOUND, as a consume on a missing queue
// gets.
func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

// subscribeOrRedeclare subscribes on conn; when the queue is missing and a
// Topology of warren's owns it, it declares the queue again, reports it, and
// subscribes once more.
func (c *Consumer) subscribeOrRedeclare(conn *amqp.Connection) (*subscription, error) {
	sub, err := c.subscribe(conn)
	if err == nil || !isNotFound(err) {
		return sub, err
	}
	owned, rerr := c.q.redeclare(conn)
	if !owned {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("%w; declaring it again failed: %w", err, rerr)
	}
	c.s.log.Warn("warren: consumer's queue was missing; declared it again", "consumer", c.opts.Name,
		"queue", c.q.describe())
	c.s.emit(Event{Kind: EventQueueRedeclared, Err: err, Consumer: c.opts.Name, Queue: c.q.describe()})
	return c.subscribe(conn)
}
