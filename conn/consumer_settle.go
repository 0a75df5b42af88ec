package conn

import (
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settle carries out the outcome the handler's result err asks for on d,
// whose settlement warren holds (the handler did not settle it). A failed
// ack or nack means the channel is gone; the broker then redelivers d, so
// there is nothing more to do about it here.
func (c *Consumer) settle(sub *subscription, ack amqp.Acknowledger, d amqp.Delivery, err error) {
	var oe *OutcomeError
	switch {
	case err == nil:
		c.ack(ack, d)
	case errors.As(err, &oe):
		c.apply(sub, ack, d, oe.Outcome, oe.Delay, err)
	default:
		switch c.opts.OnError {
		case RequeueAlways:
			_ = ack.Nack(d.DeliveryTag, false, true)
		case RequeueOnce:
			c.requeueCounted(ack, d, 1)
		case RequeueNever:
			_ = ack.Nack(d.DeliveryTag, false, false)
		default:
			c.apply(sub, ack, d, OutcomeRetry, 0, err)
		}
	}
}

// apply carries out outcome o (with delay, for OutcomeRetry) on d.
func (c *Consumer) apply(sub *subscription, ack amqp.Acknowledger, d amqp.Delivery, o Outcome, delay time.Duration, err error) {
	switch o {
	case OutcomeAck:
		c.ack(ack, d)
	case OutcomeRequeue:
		_ = ack.Nack(d.DeliveryTag, false, true)
	case OutcomeRetry:
		if sub.retries {
			c.retryLater(sub, ack, d, delay, err)
		} else {
			c.requeueCounted(ack, d, c.opts.Retry.MaxAttempts-1)
		}
	default:
		_ = ack.Nack(d.DeliveryTag, false, false)
	}
}

// ack acknowledges d, forgets its failures and remembers it for Dedupe.
// It remembers d even when the ack fails: the handler did its work, and the
// broker's redelivery of d is exactly the duplicate Dedupe is for.
func (c *Consumer) ack(ack amqp.Acknowledger, d amqp.Delivery) {
	_ = ack.Ack(d.DeliveryTag, false)
	if d.MessageId == "" {
		return
	}
	c.failures.remove(d.MessageId)
	if c.dedupe != nil {
		c.dedupe.add(d.MessageId)
	}
}

// requeueCounted requeues d while it has failed at most limit times for
// this consumer, and rejects it after: a bounded number of hot handler
// calls where no retry queue can hold the message. Failures are counted by
// MessageId; without one, a quorum queue's x-delivery-count or else the
// Redelivered flag stands in (a lost connection sets both, so such a
// message may be rejected early).
func (c *Consumer) requeueCounted(ack amqp.Acknowledger, d amqp.Delivery, limit int) {
	var failures int
	switch {
	case d.MessageId != "":
		failures = c.failures.add(d.MessageId)
	case d.Headers["x-delivery-count"] != nil:
		failures = retriesOf(d.Headers, "x-delivery-count") + 1
	case d.Redelivered:
		failures = 2
	default:
		failures = 1
	}
	requeue := failures <= limit
	if !requeue && d.MessageId != "" {
		c.failures.remove(d.MessageId)
	}
	_ = ack.Nack(d.DeliveryTag, false, requeue)
}
