package conn

import (
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settleOnce is the Acknowledger a handler's delivery carries. warren
// settles every delivery itself from the handler's result; a handler that
// also calls d.Ack, d.Nack or d.Reject (the habit of every amqp091-go user)
// would settle it twice, and the broker answers a second settlement of a tag
// with 406 PRECONDITION_FAILED, closing the channel and redelivering
// everything it held. So the first settlement wins, whoever makes it, and
// only ever for this one delivery (multiple is ignored: it would settle the
// deliveries other handlers are still working on); later ones return
// ErrDeliverySettled without reaching the broker.
type settleOnce struct {
	inner amqp.Acknowledger
	// autoAck: the broker settled the delivery when it sent it; a handler's
	// own settlement must not reach it.
	autoAck bool
	settled atomic.Bool
}

// claim takes the one settlement; it reports false if it was taken.
func (a *settleOnce) claim() bool { return a.settled.CompareAndSwap(false, true) }

// once makes the one settlement through send, or none when the broker
// settled the delivery already (autoAck).
func (a *settleOnce) once(send func() error) error {
	if !a.claim() {
		return ErrDeliverySettled
	}
	if a.autoAck {
		return nil
	}
	return send()
}

// Ack acknowledges this delivery, once.
func (a *settleOnce) Ack(tag uint64, _ bool) error {
	return a.once(func() error { return a.inner.Ack(tag, false) })
}

// Nack refuses this delivery, once.
func (a *settleOnce) Nack(tag uint64, _ bool, requeue bool) error {
	return a.once(func() error { return a.inner.Nack(tag, false, requeue) })
}

// Reject refuses this delivery, once.
func (a *settleOnce) Reject(tag uint64, requeue bool) error {
	return a.once(func() error { return a.inner.Reject(tag, requeue) })
}
