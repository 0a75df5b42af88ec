package conn

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Exchange is an exchange to declare on every connection.
type Exchange struct {
	// Name is the exchange's name. Required: the default exchange ("") cannot
	// be declared.
	Name string
	// Kind is the exchange type: "direct", "fanout", "topic", "headers" or a
	// plugin's type. Defaults to "direct".
	Kind string
	// Durable exchanges survive a broker restart. Defaults to false.
	Durable bool
	// AutoDelete exchanges are deleted once their last binding is removed.
	// Defaults to false.
	AutoDelete bool
	// Internal exchanges accept messages only from other exchanges. Defaults
	// to false.
	Internal bool
	// Args are the optional arguments, such as "alternate-exchange".
	// Defaults to nil.
	Args amqp.Table
}

// Queue is a queue to declare on every connection, or (from NamedQueue) a
// reference to a queue declared elsewhere. A Queue is used through its
// pointer: bindings and consumers that refer to a server-named queue follow
// the name the broker gave it on the current connection. Do not copy a Queue
// after first use.
type Queue struct {
	// Name is the queue's name. An empty Name asks the broker to choose one,
	// afresh on every connection; CurrentName reports it. Defaults to ""
	// (server-named).
	Name string
	// Durable queues survive a broker restart. A queue that is neither
	// Durable nor Exclusive is a transient non-exclusive queue, which
	// RabbitMQ 4.0 deprecates: DeclareTopology logs a warning, and a broker
	// that denies the feature refuses it (a permanent error). Defaults to
	// false.
	Durable bool
	// AutoDelete queues are deleted when their last consumer is cancelled.
	// Defaults to false.
	AutoDelete bool
	// Exclusive queues belong to the connection that declared them and are
	// deleted with it. Defaults to false.
	Exclusive bool
	// Args are the optional arguments, such as "x-queue-type",
	// "x-dead-letter-exchange" or "x-message-ttl". The broker refuses a
	// re-declaration with different arguments; warren then stops with a
	// permanent error naming the queue. Defaults to nil.
	Args amqp.Table

	// declared is the name the broker confirmed and the connection it was
	// declared on; server-named queues exist only on that connection.
	declared atomic.Pointer[declaredQueue]
	// reference marks a NamedQueue: a name, never a request for a
	// server-named queue.
	reference bool
}

// declaredQueue is a queue's name as declared on one connection.
type declaredQueue struct {
	name string
	conn *amqp.Connection
}

// NamedQueue returns a reference to the queue called name, for Consume or a
// Binding, when the queue is declared elsewhere (by another service, or by a
// Topology of its own). It is not declared by Consume.
// An empty name is refused where the reference is used (Consume, a
// Binding): it can only be a mistake, since a server-named queue has no name
// until a Topology declares it.
func NamedQueue(name string) *Queue {
	return &Queue{Name: name, reference: true}
}

// emptyReference reports a NamedQueue("").
func (q *Queue) emptyReference() bool { return q.reference && q.Name == "" }

// CurrentName returns the queue's name on the current connection: Name, or
// for a server-named queue the name the broker chose on the connection it
// was last declared on ("" before the first declaration).
func (q *Queue) CurrentName() string {
	if q.Name != "" {
		return q.Name
	}
	if d := q.declared.Load(); d != nil {
		return d.name
	}
	return ""
}

// describe names the queue in errors and events.
func (q *Queue) describe() string {
	if q.Name != "" {
		return q.Name
	}
	if name := q.CurrentName(); name != "" {
		return "server-named queue " + name
	}
	return "server-named queue"
}

// nameOn returns the queue's name on connection c. A server-named queue has
// a name on c only once a topology declared it there; before that the name
// from an earlier connection would be wrong, so nameOn fails with
// ErrQueueNotDeclared.
func (q *Queue) nameOn(c *amqp.Connection) (string, error) {
	if q.Name != "" {
		return q.Name, nil
	}
	if d := q.declared.Load(); d != nil && d.conn == c {
		return d.name, nil
	}
	return "", ErrQueueNotDeclared
}

// setDeclared records the name the broker confirmed on c.
func (q *Queue) setDeclared(name string, c *amqp.Connection) {
	q.declared.Store(&declaredQueue{name: name, conn: c})
}

// Binding routes messages from an exchange to a queue.
type Binding struct {
	// Queue is the bound queue; a server-named one is bound under its name on
	// the current connection. Required.
	Queue *Queue
	// Exchange is the source exchange's name. Required: the default exchange
	// routes by queue name without bindings.
	Exchange string
	// Key is the routing key (a pattern for topic exchanges). Defaults to "".
	Key string
	// Args are the binding arguments, as used by headers exchanges. Defaults
	// to nil.
	Args amqp.Table
}

// Topology is the exchanges, queues and bindings that must exist on every
// connection. DeclareTopology re-declares it on each new connection before
// consumers and publishers resume, in this order: exchanges, queues,
// bindings, then Declare.
type Topology struct {
	// Exchanges are declared first, in order. Defaults to nil.
	Exchanges []Exchange
	// Queues are declared after the exchanges, in order. Defaults to nil.
	Queues []*Queue
	// Bindings are declared after the queues, in order. Their queues need not
	// be in Queues. Defaults to nil.
	Bindings []Binding
	// Declare, if set, runs last on the same channel, for anything the
	// declarative fields cannot say (exchange-to-exchange bindings, passive
	// checks). An error it returns fails the connection attempt, which is
	// retried with backoff unless the error is marked with
	// reconnect.MarkPermanent. Defaults to nil.
	Declare func(ctx context.Context, ch *amqp.Channel) error
}

// copy returns t with its slices copied and defaults filled in, so the
// caller's later edits cannot reach the hook. Queues stay shared pointers:
// they carry the server-chosen names.
func (t Topology) copy() Topology {
	t.Exchanges = append([]Exchange(nil), t.Exchanges...)
	for i := range t.Exchanges {
		if t.Exchanges[i].Kind == "" {
			t.Exchanges[i].Kind = amqp.ExchangeDirect
		}
	}
	t.Queues = append([]*Queue(nil), t.Queues...)
	t.Bindings = append([]Binding(nil), t.Bindings...)
	return t
}

// validate reports every problem of t, each wrapping ErrInvalidTopology.
func (t Topology) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidTopology}, args...)...))
	}
	for i, e := range t.Exchanges {
		if e.Name == "" {
			bad("Exchanges[%d]: Name is required (the default exchange cannot be declared)", i)
		}
	}
	for i, q := range t.Queues {
		if q == nil {
			bad("Queues[%d] is nil", i)
		} else if q.emptyReference() {
			bad("Queues[%d] is NamedQueue(\"\"): for a server-named queue use &Queue{}", i)
		}
	}
	for i, b := range t.Bindings {
		if b.Queue == nil {
			bad("Bindings[%d]: Queue is required", i)
		} else if b.Queue.emptyReference() {
			bad("Bindings[%d]: Queue is NamedQueue(\"\"): a queue declared elsewhere needs its name", i)
		}
		if b.Exchange == "" {
			bad("Bindings[%d]: Exchange is required (the default exchange takes no bindings)", i)
		}
	}
	return errors.Join(errs...)
}
