package conn

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Confirmation is the pending outcome of one message handed to a Publisher.
// It settles exactly once: nil when the broker confirmed the message, or an
// error (ErrNacked, a *ReturnedError, ErrConfirmLost, ErrUnconfirmed, the
// channel error the message caused, or its context's error).
type Confirmation struct {
	p        *Publisher
	ctx      context.Context // bounds the message's life, republications included
	exchange string
	key      string
	msg      amqp.Publishing
	seq      uint64 // publish order, to republish in the original order
	done     chan struct{}
	err      error // written once, before done is closed

	// Guarded by p.mu.
	tag        uint64      // delivery tag on the channel it was last written to
	written    bool        // handed to a channel at least once
	inRetry    bool        // waiting in p.retry for the next channel
	stopExpire func() bool // stops the context watch while in p.retry
}

// MessageID returns the message's MessageId: the caller's, or the one the
// publisher stamped on it. Republications carry the same id, so consumers can
// drop duplicates.
func (c *Confirmation) MessageID() string { return c.msg.MessageId }

// Done returns a channel closed once the outcome is known.
func (c *Confirmation) Done() <-chan struct{} { return c.done }

// Wait waits for the outcome, bounded by ctx: nil once the broker has
// confirmed the message, or why it will not be. If ctx ends first Wait
// returns ctx's error and the message stays in flight: it may still be
// confirmed, and its own context (the one it was published with) still
// bounds its republication.
func (c *Confirmation) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle frees the message's slot in the window, records the outcome and
// wakes waiters. The caller must have removed c from every publisher
// structure under p.mu, which is what makes settling happen once.
func (c *Confirmation) settle(err error) {
	// The slot first: a caller that waits for this message and then
	// publishes the next one finds room without waiting a second time.
	<-c.p.window
	c.err = err
	close(c.done)
}
