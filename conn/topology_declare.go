package conn

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// DeclareTopology declares t on the current connection, if there is one,
// and again on every new connection before consumers and publishers resume
// (a PhaseTopology ready hook). Server-named queues get a fresh name on each
// connection, which their CurrentName reports and which bindings and
// consumers referring to them follow.
//
// A declaration the broker refuses in a way no retry can change is a
// permanent error naming the entity (see reconnect.IsPermanent and
// declareError): an unknown exchange kind (503 COMMAND_INVALID, for which
// RabbitMQ closes the whole connection), other properties or arguments than
// the existing entity's (406 PRECONDITION_FAILED), a reserved name or no
// permission on it (403 ACCESS_REFUSED), 530 NOT_ALLOWED and 540
// NOT_IMPLEMENTED. It is returned here if the supervisor is Ready, else it
// stops the supervisor, whose Err reports it. Other failures (a missing
// exchange to bind to, an exclusive queue still held by an old connection,
// a lost connection) fail the connection attempt, which is retried with
// backoff.
//
// t is copied, except its Queues, which stay shared so that their names can
// be followed. The returned func stops re-declaring t; it deletes nothing.
func (s *Supervisor) DeclareTopology(ctx context.Context, t Topology) (remove func(), err error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	t = t.copy()
	warnDeprecated(s.log, t) // deprecated.go
	unregister := s.registerTopology(&t)
	removeHook, err := s.AddHook(ctx, Hook{
		Name:  "topology",
		Phase: PhaseTopology,
		Up: func(ctx context.Context, c *amqp.Connection) error {
			return declareTopology(ctx, c, t)
		},
	})
	if err != nil {
		unregister()
		return nil, err
	}
	return func() {
		unregister()
		removeHook()
	}, nil
}

// declareTopology declares t on one channel of c, which it closes again.
func declareTopology(ctx context.Context, c *amqp.Connection, t Topology) (err error) {
	ch, err := c.Channel()
	if err != nil {
		return fmt.Errorf("warren: topology: open channel: %w", err)
	}
	defer func() {
		// After a refused declaration the broker has closed the channel
		// already and Close returns at once.
		if cerr := ch.Close(); cerr != nil && err == nil && !errors.Is(cerr, amqp.ErrClosed) {
			err = fmt.Errorf("warren: topology: close channel: %w", cerr)
		}
	}()
	for _, e := range t.Exchanges {
		if err := ch.ExchangeDeclare(e.Name, e.Kind, e.Durable, e.AutoDelete, e.Internal, false, e.Args); err != nil {
			return declareError(fmt.Errorf("warren: declare exchange %q (kind %q): %w", e.Name, e.Kind, err))
		}
	}
	for _, q := range t.Queues {
		got, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, q.Args)
		if err != nil {
			err = deprecatedRefusal(q.deprecatedFeature(), err) // deprecated.go
			return declareError(fmt.Errorf("warren: declare queue %q: %w", q.Name, err))
		}
		q.setDeclared(got.Name, c)
	}
	for _, b := range t.Bindings {
		name, err := b.Queue.nameOn(c)
		if err != nil {
			return fmt.Errorf("warren: bind %s to exchange %q: %w", b.Queue.describe(), b.Exchange, err)
		}
		if err := ch.QueueBind(name, b.Key, b.Exchange, false, b.Args); err != nil {
			return declareError(fmt.Errorf("warren: bind queue %q to exchange %q with key %q: %w",
				name, b.Exchange, b.Key, err))
		}
	}
	if t.Declare != nil {
		if err := t.Declare(ctx, ch); err != nil {
			return fmt.Errorf("warren: topology Declare: %w", err)
		}
	}
	return nil
}

// declareError marks err permanent when the broker refused a declaration
// for a reason that is in the declaration itself, so that every retry would
// be refused the same way and a supervisor redialing for it would loop
// forever. Only the broker's own refusals count (Server is set): amqp091-go
// uses some of the same codes for local conditions.
func declareError(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Server && refusesDeclaration[ae.Code] {
		return reconnect.MarkPermanent(err)
	}
	return err
}

// refusesDeclaration holds the reply codes with which a broker refuses a
// declaration because of what it says. 404 NOT_FOUND (bind to an exchange
// not declared yet) and 405 RESOURCE_LOCKED (an exclusive queue held by a
// connection that is going away) are missing on purpose: another service or
// the passing of time can fix them.
var refusesDeclaration = map[int]bool{
	amqp.AccessRefused:      true, // 403: reserved "amq." name, no configure permission
	amqp.PreconditionFailed: true, // 406: exists with other properties, bad argument
	amqp.NotAllowed:         true, // 530
	amqp.SyntaxError:        true, // 502: a field the broker cannot read
	amqp.CommandInvalid:     true, // 503: unknown exchange kind
	amqp.NotImplemented:     true, // 540: a feature the broker does not have
}
