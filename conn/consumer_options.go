package conn

import (
	"errors"
	"fmt"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultPrefetch is the default ConsumerOptions.Prefetch: enough deliveries
// in flight to hide the round trip, few enough that a consumer that dies
// holds little back from the others.
const DefaultPrefetch = 32

// RequeuePolicy says what happens to a delivery whose handler returned an
// error or panicked.
type RequeuePolicy int

const (
	// RequeueAlways nacks with requeue: the message goes back to the queue
	// and is delivered again, possibly at once. Nothing is lost, but a
	// message that always fails (a "poison" message) is retried forever; use
	// a quorum queue's delivery limit or another policy against that.
	RequeueAlways RequeuePolicy = iota
	// RequeueOnce requeues a message the first time its handler fails and
	// rejects it (without requeue) if it fails again after redelivery: it
	// is then dead-lettered if the queue has a dead-letter exchange, and
	// dropped otherwise.
	RequeueOnce
	// RequeueNever rejects without requeue at the first failure: the message
	// is dead-lettered if the queue has a dead-letter exchange, and dropped
	// otherwise.
	RequeueNever
)

// String returns the policy's name, such as "RequeueAlways".
func (p RequeuePolicy) String() string {
	switch p {
	case RequeueAlways:
		return "RequeueAlways"
	case RequeueOnce:
		return "RequeueOnce"
	case RequeueNever:
		return "RequeueNever"
	}
	return "RequeuePolicy(" + strconv.Itoa(int(p)) + ")"
}

// requeue reports whether a failed delivery goes back to its queue.
func (p RequeuePolicy) requeue(redelivered bool) bool {
	switch p {
	case RequeueOnce:
		return !redelivered
	case RequeueNever:
		return false
	}
	return true
}

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
	// OnError says what happens to a delivery whose handler returned an
	// error or panicked. Defaults to RequeueAlways: nothing is lost.
	OnError RequeuePolicy
	// Exclusive asks the broker for exclusive consumer access to the queue.
	// Defaults to false.
	Exclusive bool
	// Args are the basic.consume arguments, such as "x-priority". Defaults
	// to nil.
	Args amqp.Table
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
	if o.OnError < RequeueAlways || o.OnError > RequeueNever {
		bad("OnError: unknown policy %v", o.OnError)
	}
	if len(o.Name) > 255 {
		bad("Name must be at most 255 bytes (an AMQP short string), got %d", len(o.Name))
	}
	if err := o.Args.Validate(); err != nil {
		bad("Args: %v", err)
	}
	return errors.Join(errs...)
}
