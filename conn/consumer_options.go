package conn

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultPrefetch is the default ConsumerOptions.Prefetch: enough deliveries
// in flight to hide the round trip, few enough that a consumer that dies
// holds little back from the others.
const DefaultPrefetch = 32

// RequeuePolicy is a consumer's default failure outcome: what happens to a
// delivery whose handler returned an error that chose no Outcome (see
// Requeue, Reject, RetryAfter), or panicked.
type RequeuePolicy int

const (
	// RetryBackoff retries the message later through the broker (see
	// OutcomeRetry and RetryPolicy): after 1 s, 10 s, 1 min and 10 min by
	// default, then it moves to the dead queue QUEUE.dead. A message that
	// always fails costs 5 handler calls in about 11 minutes, never blocks
	// the others, and is never lost. The consumer declares the retry and dead
	// queues itself. On a queue that cannot have them (server-named or
	// exclusive), or if declaring them fails, the message is requeued at once
	// until it has failed MaxAttempts times for this consumer (counted by
	// MessageId; see RequeueOnce), and then rejected.
	RetryBackoff RequeuePolicy = iota
	// RequeueAlways nacks with requeue (OutcomeRequeue): the message goes
	// back to the queue and is delivered again at once. Nothing is lost, but
	// a message that always fails (a "poison" message) loops hot, thousands
	// of handler calls a second, until a quorum queue's delivery limit (see
	// QuorumArgs) stops it.
	RequeueAlways
	// RequeueOnce requeues a message the first time its handler fails and
	// rejects it (OutcomeReject) the second time. Failures are counted per
	// consumer by MessageId, so a redelivery after a lost connection is no
	// failure; a message without a MessageId falls back on its Redelivered
	// flag, which a lost connection sets too. Rejection dead-letters the
	// message if the queue has a dead-letter exchange, and drops it
	// otherwise.
	RequeueOnce
	// RequeueNever rejects at the first failure (OutcomeReject): the message
	// is dead-lettered if the queue has a dead-letter exchange, and dropped
	// otherwise.
	RequeueNever
)

// String returns the policy's name, such as "RetryBackoff".
func (p RequeuePolicy) String() string {
	switch p {
	case RetryBackoff:
		return "RetryBackoff"
	case RequeueAlways:
		return "RequeueAlways"
	case RequeueOnce:
		return "RequeueOnce"
	case RequeueNever:
		return "RequeueNever"
	}
	return "RequeuePolicy(" + strconv.Itoa(int(p)) + ")"
}

// failureWindow bounds the failures a consumer counts by MessageId (for
// RequeueOnce and for retries without retry queues): the ids of the last
// 10,000 failed messages, each for 10 minutes. A message forgotten early is
// requeued a few more times, never lost.
const (
	failureWindowSize = 10_000
	failureWindowTTL  = 10 * time.Minute
)

// ConsumerOptions configures a Consumer. The zero value of every field means
// its default; Consume validates and copies the struct.
type ConsumerOptions struct {
	// Name identifies the consumer in events, logs and stall reports, and is
	// its consumer tag on the broker. Defaults to "warren-consumer-N", N
	// numbering the process's consumers.
	Name string
	// Prefetch bounds the deliveries the broker sends before they are
	// acknowledged (basic.qos); it bounds the consumer's memory too. It
	// cannot be unlimited. Ignored by the broker with AutoAck. Defaults to
	// DefaultPrefetch (32), or twice Concurrency if that is larger.
	Prefetch int
	// Concurrency is how many handler calls may run at once, each on a
	// goroutine of its own. With more than one, deliveries are handled out of
	// order. Defaults to 1.
	Concurrency int
	// AutoAck makes the broker consider every message acknowledged once
	// sent: a handler error or a lost connection then loses the message, and
	// the broker ignores Prefetch (amqp091-go buffers what it sends). Only
	// for messages that may be lost. Defaults to false.
	AutoAck bool
	// OnError is the outcome of a delivery whose handler returned an error
	// that chose no Outcome, or panicked. Defaults to RetryBackoff: retried
	// later through the broker, then moved to a dead queue; nothing loops
	// hot and nothing is lost.
	OnError RequeuePolicy
	// Retry is how OutcomeRetry (RetryBackoff, RetryAfter) retries: its
	// delays, attempts and dead queue. The consumer declares the retry and
	// dead queues on every connection, before it subscribes, when OnError is
	// RetryBackoff or Retry.Delays is set, its queue has a Name and is not
	// Exclusive, and AutoAck is off; otherwise RetryAfter requeues like
	// RetryBackoff without retry queues. Defaults to the RetryPolicy
	// defaults.
	Retry RetryPolicy
	// Dedupe, if set, suppresses redelivered duplicates by MessageId (see
	// DedupeOptions). Defaults to nil: every delivery is handled.
	Dedupe *DedupeOptions
	// Exclusive asks the broker for exclusive consumer access to the queue.
	// Defaults to false.
	Exclusive bool
	// Args are the basic.consume arguments, such as "x-priority". Defaults
	// to nil.
	Args amqp.Table
	// Middleware wraps the handling of every delivery (see
	// HandlerMiddleware), the first outermost. It is how tracing and metrics
	// modules (contrib/otel, contrib/prometheus) plug in. Duplicates that
	// Dedupe drops never reach it. Defaults to none.
	Middleware []HandlerMiddleware

	// handle is Middleware composed, or nil without middleware.
	handle HandleFunc
}

// withDefaults returns a copy of o with zero fields defaulted; seq numbers
// the default name.
func (o ConsumerOptions) withDefaults(seq uint64) ConsumerOptions {
	if o.Name == "" {
		o.Name = "warren-consumer-" + strconv.FormatUint(seq, 10)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.Prefetch == 0 {
		o.Prefetch = max(DefaultPrefetch, 2*o.Concurrency)
	}
	if o.Dedupe != nil {
		d := o.Dedupe.withDefaults()
		o.Dedupe = &d
	}
	if len(o.Middleware) > 0 && !slices.ContainsFunc(o.Middleware, isNilMiddleware) {
		o.handle = composeMiddleware(o.Middleware)
	}
	if o.Args != nil {
		args := make(amqp.Table, len(o.Args))
		for k, v := range o.Args {
			args[k] = v
		}
		o.Args = args
	}
	return o
}

// maxPrefetch is the largest prefetch count basic.qos can carry.
const maxPrefetch = 65535

// validate checks defaulted options and returns every problem found, each
// wrapping ErrInvalidConsumerOptions.
func (o ConsumerOptions) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConsumerOptions}, args...)...))
	}
	if o.Prefetch < 0 || o.Prefetch > maxPrefetch {
		bad("Prefetch must be in [1,%d] (0 means the default, never unlimited), got %d", maxPrefetch, o.Prefetch)
	}
	if o.Concurrency < 0 {
		bad("Concurrency must not be negative, got %d", o.Concurrency)
	}
	if o.OnError < RetryBackoff || o.OnError > RequeueNever {
		bad("OnError: unknown policy %v", o.OnError)
	}
	if len(o.Name) > 255 {
		bad("Name must be at most 255 bytes (an AMQP short string), got %d", len(o.Name))
	}
	for i, mw := range o.Middleware {
		if mw == nil {
			bad("Middleware[%d] is nil", i)
		}
	}
	if len(o.Middleware) > 0 && o.handle == nil && !slices.ContainsFunc(o.Middleware, isNilMiddleware) {
		bad("Middleware returned a nil HandleFunc")
	}
	if err := o.Args.Validate(); err != nil {
		bad("Args: %v", err)
	}
	errs = append(errs, o.Retry.withDefaults("").validate()...)
	if o.Dedupe != nil {
		errs = append(errs, o.Dedupe.validate())
	}
	return errors.Join(errs...)
}
