package conn

import (
	"fmt"
	"sort"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RetryHeader is the message header that counts a message's retries: absent
// on its first delivery, n on the copy published for its n-th retry.
const RetryHeader = "x-warren-retries"

// ErrorHeader is the header of a message moved to its dead queue: the text
// of the error of its last handler call, cut to maxErrorHeader bytes.
const ErrorHeader = "x-warren-error"

// maxErrorHeader bounds ErrorHeader: an error's text may be long, and every
// byte is stored with the message.
const maxErrorHeader = 512

// RetryPolicy is how a consumer retries a failed message later without
// holding it in memory, the standard RabbitMQ way: for each delay, a retry
// queue QUEUE.retry.DELAY whose messages expire after DELAY (x-message-ttl)
// and are then dead-lettered back to QUEUE (through the default exchange);
// and a dead queue, QUEUE.dead, for messages that failed MaxAttempts times.
// The broker holds the delay, so it survives a restart of the consumer (and
// of the broker: the queues are durable and copies keep the original's
// delivery mode) and no delivery sits in the prefetch window meanwhile.
//
// The consumer declares these queues itself (see ConsumerOptions.Retry);
// RetryPolicy.Topology returns them for a Topology of one's own.
type RetryPolicy struct {
	// Delays are the retry delays, one retry queue each: the n-th retry
	// waits Delays[n-1], or the last delay once n exceeds them. A delay is
	// rounded to milliseconds. Changing them creates new queues; the old
	// ones are left to delete by hand. Defaults to 1s, 10s, 1m, 10m.
	Delays []time.Duration
	// MaxAttempts is how many handler calls a message gets (the first and
	// its retries) before it is moved to the dead queue. Defaults to
	// len(Delays)+1: with the default delays, a message that always fails is
	// handled 5 times in about 11 minutes, 3 of them in its first minute.
	MaxAttempts int
	// DeadQueue is the queue a message moves to after MaxAttempts failed
	// calls, with ErrorHeader set. Defaults to QUEUE.dead.
	DeadQueue string
	// QueueType is the type of the retry and dead queues:
	// amqp.QueueTypeClassic or amqp.QueueTypeQuorum. In a cluster a classic
	// queue is unavailable while its node is down (the consumer then falls
	// back on counted requeues); a quorum queue is not. Defaults to quorum
	// when the consumer's Queue declares itself quorum in its Args, classic
	// otherwise (a NamedQueue's type is unknown).
	QueueType string
}

// DefaultRetryDelays returns the default RetryPolicy.Delays.
func DefaultRetryDelays() []time.Duration {
	return []time.Duration{time.Second, 10 * time.Second, time.Minute, 10 * time.Minute}
}

// forQueue returns p defaulted for the consumer's queue q: its retry and
// dead queues are quorum queues if q is one and p names no type.
func (p RetryPolicy) forQueue(q *Queue) RetryPolicy {
	if t, _ := q.Args[amqp.QueueTypeArg].(string); p.QueueType == "" && t == amqp.QueueTypeQuorum {
		p.QueueType = amqp.QueueTypeQuorum
	}
	return p.withDefaults(q.Name)
}

// withDefaults returns p with zero fields defaulted for queue, its delays
// copied, sorted and rounded.
func (p RetryPolicy) withDefaults(queue string) RetryPolicy {
	if len(p.Delays) == 0 {
		p.Delays = DefaultRetryDelays()
	}
	delays := make([]time.Duration, len(p.Delays))
	for i, d := range p.Delays {
		delays[i] = d.Round(time.Millisecond)
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	p.Delays = delays
	if p.MaxAttempts == 0 {
		p.MaxAttempts = len(p.Delays) + 1
	}
	if p.DeadQueue == "" {
		p.DeadQueue = queue + ".dead"
	}
	return p
}

// validate reports the problems of a defaulted p, each wrapping
// ErrInvalidConsumerOptions.
func (p RetryPolicy) validate() []error {
	var errs []error
	for i, d := range p.Delays {
		if d < time.Millisecond {
			errs = append(errs, fmt.Errorf("%w: Retry.Delays[%d] must be at least 1ms, got %v",
				ErrInvalidConsumerOptions, i, d))
		}
	}
	if p.QueueType != "" && p.QueueType != amqp.QueueTypeClassic && p.QueueType != amqp.QueueTypeQuorum {
		errs = append(errs, fmt.Errorf("%w: Retry.QueueType must be classic or quorum, got %q",
			ErrInvalidConsumerOptions, p.QueueType))
	}
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("%w: Retry.MaxAttempts must be positive, got %d",
			ErrInvalidConsumerOptions, p.MaxAttempts))
	}
	return errs
}

// RetryQueueName returns the name of queue's retry queue for delay d.
func RetryQueueName(queue string, d time.Duration) string {
	return fmt.Sprintf("%s.retry.%v", queue, d.Round(time.Millisecond))
}

// Topology returns the retry queues and the dead queue of p for queue (the
// consumer's queue, which it does not include): durable, of p's QueueType,
// each retry queue with x-message-ttl and a dead-letter route back to queue.
// Declaring them is idempotent; the consumer declares them itself on every
// connection.
func (p RetryPolicy) Topology(queue string) Topology {
	p = p.withDefaults(queue)
	typed := func(args amqp.Table) amqp.Table {
		if p.QueueType != "" {
			args[amqp.QueueTypeArg] = p.QueueType
		}
		return args
	}
	var t Topology
	for _, d := range p.Delays {
		t.Queues = append(t.Queues, &Queue{
			Name:    RetryQueueName(queue, d),
			Durable: true,
			Args: typed(amqp.Table{
				amqp.QueueMessageTTLArg: d.Milliseconds(),
				DeadLetterExchangeArg:   "",
				DeadLetterRoutingKeyArg: queue,
			}),
		})
	}
	t.Queues = append(t.Queues, &Queue{Name: p.DeadQueue, Durable: true, Args: typed(amqp.Table{})})
	return t
}

// delay returns the delay of a message's retry number n (1 for the first
// retry), or, when asked is positive, the shortest delay of p that is at
// least asked (the longest if none is). p must be defaulted.
func (p RetryPolicy) delay(n int, asked time.Duration) time.Duration {
	if asked > 0 {
		for _, d := range p.Delays {
			if d >= asked {
				return d
			}
		}
		return p.Delays[len(p.Delays)-1]
	}
	return p.Delays[min(n, len(p.Delays))-1]
}

// retriesOf returns the count a delivery carries in header: 0 if it has
// none or an unreadable one.
func retriesOf(h amqp.Table, header string) int {
	switch v := h[header].(type) {
	case int32:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	case int16:
		return int(v)
	case int8:
		return int(v)
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	}
	return 0
}
