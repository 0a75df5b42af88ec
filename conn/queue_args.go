package conn

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Queue arguments amqp091-go has no constant for.
const (
	// DeadLetterExchangeArg names the exchange a queue dead-letters to ("" is
	// the default exchange, which routes by queue name).
	DeadLetterExchangeArg = "x-dead-letter-exchange"
	// DeadLetterRoutingKeyArg replaces the routing key of dead-lettered
	// messages; without it they keep their own.
	DeadLetterRoutingKeyArg = "x-dead-letter-routing-key"
	// DeliveryLimitArg bounds a quorum queue's redeliveries of one message.
	DeliveryLimitArg = "x-delivery-limit"
)

// DeadLetter is where a queue sends the messages it dead-letters: rejected
// without requeue (OutcomeReject), expired (MessageTTL), dropped by
// MaxLength's drop-head, or past a quorum queue's DeliveryLimit.
type DeadLetter struct {
	// Exchange receives dead-lettered messages. Defaults to "": the default
	// exchange, which routes by RoutingKey to the queue of that name.
	Exchange string
	// RoutingKey replaces the messages' routing key. Defaults to "": they
	// keep their own (so with the default exchange RoutingKey is required).
	RoutingKey string
}

// DeadLetterToQueue returns a DeadLetter that routes to the queue called
// name through the default exchange, with no exchange or binding to declare.
func DeadLetterToQueue(name string) *DeadLetter { return &DeadLetter{RoutingKey: name} }

// QueueArgs describes, as data, the queue arguments users otherwise write as
// raw Args tables; Table turns it into one for Queue.Args. The zero value is
// a classic queue with no arguments.
type QueueArgs struct {
	// Type is amqp.QueueTypeClassic, amqp.QueueTypeQuorum (replicated; a
	// delivery limit; requeued messages go to the back) or
	// amqp.QueueTypeStream (an append-only log; deliveries are not removed
	// when acknowledged). A quorum or stream queue must be durable,
	// non-exclusive and not auto-delete. Defaults to "": the broker's
	// default, classic.
	Type string
	// DeliveryLimit, for quorum queues only, is how many times the broker
	// redelivers a message returned to the queue (requeued, or unacked when
	// its consumer's channel or connection was lost: both count) before it
	// dead-letters it, or drops it without DeadLetter. It is the plain
	// alternative to RetryPolicy against poison messages, without delays.
	// Defaults to 0: no limit.
	DeliveryLimit int
	// DeadLetter is where dead-lettered messages go. Defaults to nil: they
	// are dropped.
	DeadLetter *DeadLetter
	// MessageTTL expires messages that waited this long in the queue (they
	// are dead-lettered). Rounded to milliseconds. Defaults to 0: no expiry.
	MessageTTL time.Duration
	// MaxLength bounds the ready messages the queue holds. Defaults to 0: no
	// bound.
	MaxLength int
	// MaxLengthBytes bounds the bytes of the ready messages' bodies (for a
	// stream, the size of the log kept on disk). Defaults to 0: no bound.
	MaxLengthBytes int64
	// Overflow is what a full queue does (MaxLength, MaxLengthBytes):
	// amqp.QueueOverflowDropHead drops (dead-letters) the oldest message,
	// amqp.QueueOverflowRejectPublish nacks new publishes (a Publisher's
	// Publish then fails with ErrNacked), amqp.QueueOverflowRejectPublishDLX
	// nacks and dead-letters them (classic queues only). Defaults to "": the
	// broker's default, drop-head.
	Overflow string
	// SingleActiveConsumer makes the broker deliver to one consumer of the
	// queue at a time; the next takes over when it goes. Defaults to false.
	SingleActiveConsumer bool
	// MaxAge, for streams only, discards log segments older than this.
	// Rounded down to seconds. Defaults to 0: kept until MaxLengthBytes.
	MaxAge time.Duration
}

// Table returns a's arguments as a table for Queue.Args, or an error
// wrapping ErrInvalidTopology for a combination the broker would refuse.
//
// A stream is consumed like a queue (a prefetch and manual acks are
// required, which a Consumer has), with "x-stream-offset" in
// ConsumerOptions.Args saying where to start. warren passes the same Args on
// every resubscription and does not track the offset: after a reconnect a
// stream consumer starts again from that offset ("first" re-reads the log,
// "next", the default, skips what was appended meanwhile). Keep the offset
// of the last handled message (the "x-stream-offset" header of each
// delivery) to resume exactly.
func (a QueueArgs) Table() (amqp.Table, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: QueueArgs: "+format, append([]any{ErrInvalidTopology}, args...)...))
	}
	t := amqp.Table{}
	switch a.Type {
	case "":
	case amqp.QueueTypeClassic, amqp.QueueTypeQuorum, amqp.QueueTypeStream:
		t[amqp.QueueTypeArg] = a.Type
	default:
		bad("unknown Type %q", a.Type)
	}
	stream := a.Type == amqp.QueueTypeStream
	if a.DeliveryLimit < 0 {
		bad("DeliveryLimit must not be negative, got %d", a.DeliveryLimit)
	} else if a.DeliveryLimit > 0 {
		if a.Type != amqp.QueueTypeQuorum {
			bad("DeliveryLimit needs a quorum queue")
		}
		t[DeliveryLimitArg] = int64(a.DeliveryLimit)
	}
	if a.DeadLetter != nil {
		if stream {
			bad("a stream does not dead-letter")
		}
		if a.DeadLetter.Exchange == "" && a.DeadLetter.RoutingKey == "" {
			bad("DeadLetter through the default exchange needs a RoutingKey (the queue's name)")
		}
		t[DeadLetterExchangeArg] = a.DeadLetter.Exchange
		if a.DeadLetter.RoutingKey != "" {
			t[DeadLetterRoutingKeyArg] = a.DeadLetter.RoutingKey
		}
	}
	if a.MessageTTL < 0 || (a.MessageTTL > 0 && stream) {
		bad("MessageTTL must be positive and not on a stream (use MaxAge), got %v", a.MessageTTL)
	} else if a.MessageTTL > 0 {
		t[amqp.QueueMessageTTLArg] = a.MessageTTL.Milliseconds()
	}
	if a.MaxLength < 0 || (a.MaxLength > 0 && stream) {
		bad("MaxLength must be positive and not on a stream (use MaxLengthBytes), got %d", a.MaxLength)
	} else if a.MaxLength > 0 {
		t[amqp.QueueMaxLenArg] = int64(a.MaxLength)
	}
	if a.MaxLengthBytes < 0 {
		bad("MaxLengthBytes must not be negative, got %d", a.MaxLengthBytes)
	} else if a.MaxLengthBytes > 0 {
		t[amqp.QueueMaxLenBytesArg] = a.MaxLengthBytes
	}
	switch a.Overflow {
	case "":
	case amqp.QueueOverflowDropHead, amqp.QueueOverflowRejectPublish, amqp.QueueOverflowRejectPublishDLX:
		if stream || (a.Type == amqp.QueueTypeQuorum && a.Overflow == amqp.QueueOverflowRejectPublishDLX) {
			bad("Overflow %q is not for a %s queue", a.Overflow, a.Type)
		}
		t[amqp.QueueOverflowArg] = a.Overflow
	default:
		bad("unknown Overflow %q", a.Overflow)
	}
	if a.SingleActiveConsumer {
		t[amqp.SingleActiveConsumerArg] = true
	}
	if a.MaxAge < 0 || (a.MaxAge > 0 && !stream) {
		bad("MaxAge must be positive and only on a stream, got %v", a.MaxAge)
	} else if a.MaxAge > 0 {
		t[amqp.StreamMaxAgeArg] = strconv.FormatInt(int64(max(a.MaxAge/time.Second, 1)), 10) + "s"
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}
