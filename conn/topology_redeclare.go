package conn

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// registerTopology records t for redeclareQueue; the returned func forgets
// it (a removed Topology declares nothing again).
func (s *Supervisor) registerTopology(t *Topology) (unregister func()) {
	s.topoMu.Lock()
	s.topologies = append(s.topologies, t)
	s.topoMu.Unlock()
	return func() {
		s.topoMu.Lock()
		defer s.topoMu.Unlock()
		for i, r := range s.topologies {
			if r == t {
				s.topologies = append(s.topologies[:i], s.topologies[i+1:]...)
				return
			}
		}
	}
}

// queueTopology gathers, from every registered Topology, what declares q
// again: its declaration (q itself, or a declared queue of the same name for
// a NamedQueue reference), every binding that routes to it, and the
// exchanges those bindings name. It reports false when no Topology declares
// q: a queue declared elsewhere is not warren's to recreate.
func (s *Supervisor) queueTopology(q *Queue) (Topology, bool) {
	s.topoMu.Lock()
	defer s.topoMu.Unlock()
	same := func(o *Queue) bool { return o == q || (q.Name != "" && o.Name == q.Name) }
	var decl *Queue
	for _, t := range s.topologies {
		for _, tq := range t.Queues {
			if decl == nil && same(tq) {
				decl = tq
			}
		}
	}
	if decl == nil {
		return Topology{}, false
	}
	sub := Topology{Queues: []*Queue{decl}}
	needed := make(map[string]bool)
	for _, t := range s.topologies {
		for _, b := range t.Bindings {
			if same(b.Queue) {
				b.Queue = decl
				sub.Bindings = append(sub.Bindings, b)
				needed[b.Exchange] = true
			}
		}
	}
	for _, t := range s.topologies {
		for _, e := range t.Exchanges {
			if needed[e.Name] {
				needed[e.Name] = false // once, from the first Topology declaring it
				sub.Exchanges = append(sub.Exchanges, e)
			}
		}
	}
	return sub, true
}

// redeclareQueue declares q again on c from the registered Topologies, the
// way the RabbitMQ Java client's topology recovery does when a queue
// vanished. failed is the name a subscription just failed on: when another
// consumer of the same server-named queue has declared it again meanwhile
// (its name on c changed), nothing is declared twice. The user's Declare
// callbacks are not rerun: they may do anything, and a consumer's recovery
// must not surprise them.
func (s *Supervisor) redeclareQueue(c *amqp.Connection, q *Queue, failed string) (owned, declared bool, err error) {
	sub, ok := s.queueTopology(q)
	if !ok {
		return false, false, nil
	}
	s.redeclareMu.Lock()
	defer s.redeclareMu.Unlock()
	if name, err := q.nameOn(c); err == nil && name != failed {
		return true, false, nil // declared again already
	}
	return true, true, declareTopology(context.Background(), c, sub)
}

// isNotFound reports a broker 404 NOT_FOUND, as a consume on a missing queue
// gets.
func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

// subscribeOrRedeclare subscribes on conn; when the queue is missing and a
// registered Topology declares it, it declares the queue again, reports it,
// and subscribes once more.
func (c *Consumer) subscribeOrRedeclare(conn *amqp.Connection) (*subscription, error) {
	failed, _ := c.q.nameOn(conn)
	sub, err := c.subscribe(conn)
	if err == nil || !isNotFound(err) {
		return sub, err
	}
	owned, declared, rerr := c.s.redeclareQueue(conn, c.q, failed)
	if !owned {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("%w; declaring it again failed: %w", err, rerr)
	}
	if !declared {
		return c.subscribe(conn) // another consumer of the queue declared it
	}
	c.s.log.Warn("warren: consumer's queue was missing; declared it again", "consumer", c.opts.Name,
		"queue", c.q.describe())
	c.s.emit(Event{Kind: EventQueueRedeclared, Err: err, Consumer: c.opts.Name, Queue: c.q.describe()})
	return c.subscribe(conn)
}
