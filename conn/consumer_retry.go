package conn

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// retryPublishTimeout bounds the publish of a retry copy and the wait for
// its confirm. Past it the delivery is requeued rather than lost, and the
// handler's slot is free again.
const retryPublishTimeout = 30 * time.Second

// retriesEnabled reports whether a consumer with opts on q retries through
// retry queues: it settles by hand, its queue has a name that outlives the
// connection for the retry queues to dead-letter back to, and it asked for
// retries (by default, or with Retry.Delays).
func retriesEnabled(q *Queue, opts ConsumerOptions) bool {
	return !opts.AutoAck && q.Name != "" && !q.Exclusive &&
		(opts.OnError == RetryBackoff || len(opts.Retry.Delays) > 0)
}

// retryLater moves d to the retry queue of its next delay (asked, or the
// policy's for the attempt), or to the dead queue once it has had
// MaxAttempts handler calls. The delivery is acknowledged only after the
// broker confirmed the copy, so a crash in between leaves both (the
// original is redelivered: a duplicate, never a loss). The copy is
// published mandatory: a retry queue deleted meanwhile makes it fail instead
// of vanishing. If it fails, d is requeued.
func (c *Consumer) retryLater(sub *subscription, ack amqp.Acknowledger, d amqp.Delivery, asked time.Duration, herr error) {
	p := c.opts.Retry
	calls := retriesOf(d.Headers, RetryHeader) + 1
	headers := copyHeaders(d.Headers)
	var key string
	if calls >= p.MaxAttempts {
		key = p.DeadQueue
		headers[ErrorHeader] = truncate(herr.Error(), maxErrorHeader)
	} else {
		key = RetryQueueName(sub.queue, p.delay(calls, asked))
	}
	headers[RetryHeader] = int32(calls)
	ctx, cancel := context.WithTimeout(sub.ctx, retryPublishTimeout)
	defer cancel()
	if err := c.pub.Publish(ctx, "", key, copyOf(d, headers)); err != nil {
		c.s.log.Warn("warren: consumer could not move a failed message; requeued it", "consumer", c.opts.Name,
			"queue", sub.queue, "to", key, "err", err)
		_ = ack.Nack(d.DeliveryTag, false, true)
		return
	}
	_ = ack.Ack(d.DeliveryTag, false)
}

// copyOf returns d as a publishing with headers. UserId is dropped (the
// broker refuses a user id other than the connection's), and so are the CC
// and BCC headers, which would route the copy to their queues again.
func copyOf(d amqp.Delivery, headers amqp.Table) amqp.Publishing {
	delete(headers, "CC")
	delete(headers, "BCC")
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

// copyHeaders returns a shallow copy of h, never nil.
func copyHeaders(h amqp.Table) amqp.Table {
	out := make(amqp.Table, len(h)+2)
	for k, v := range h {
		out[k] = v
	}
	return out
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
