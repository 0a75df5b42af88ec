package conn

import (
	"strconv"
	"time"
)

// Outcome is what a consumer does with a delivery once its handler returns.
// A handler chooses it by what it returns: nil is OutcomeAck; an error made
// by Requeue, Reject or RetryAfter (matched with errors.As, so it may be
// wrapped further) is that outcome; any other error, and a panic, is the
// consumer's default failure outcome, ConsumerOptions.OnError.
//
// A handler that settles its delivery itself (d.Ack, d.Nack, d.Reject) has
// chosen already: warren settles nothing, whatever the handler returns.
type Outcome int

const (
	// OutcomeAck acknowledges the delivery (basic.ack): the broker deletes
	// the message.
	OutcomeAck Outcome = iota
	// OutcomeRequeue refuses the delivery with requeue (basic.nack
	// requeue=true): the broker puts the message back in its place, near
	// the head of its queue (a quorum queue: at the back), with Redelivered
	// set, and delivers it again at once, to this or another consumer. Use it for failures that
	// another attempt right away may cure; it is the only outcome that can
	// loop hot.
	OutcomeRequeue
	// OutcomeReject refuses the delivery without requeue (basic.nack
	// requeue=false): the broker dead-letters the message to the queue's
	// dead-letter exchange if it has one (x-dead-letter-exchange, see
	// DeadLetterArgs), and otherwise deletes it.
	OutcomeReject
	// OutcomeRetry delivers the message again after a delay held by the
	// broker (see RetryPolicy): warren publishes a copy to the retry queue of
	// that delay, with confirms, and acknowledges the delivery only once the
	// broker confirmed the copy. When the copy's time-to-live ends the broker
	// dead-letters it back to the consumer's queue. After RetryPolicy's
	// MaxAttempts handler calls the copy goes to the dead queue instead.
	OutcomeRetry
)

// String returns the outcome's name, such as "Retry".
func (o Outcome) String() string {
	switch o {
	case OutcomeAck:
		return "Ack"
	case OutcomeRequeue:
		return "Requeue"
	case OutcomeReject:
		return "Reject"
	case OutcomeRetry:
		return "Retry"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// OutcomeError is a handler's error that carries the outcome the handler
// chose for its delivery. Make it with Requeue, Reject or RetryAfter.
type OutcomeError struct {
	// Outcome is the chosen outcome.
	Outcome Outcome
	// Delay is the retry delay an OutcomeRetry asked for; 0 means the
	// RetryPolicy's delay for the attempt.
	Delay time.Duration
	// Err is the handler's own error; it may be nil.
	Err error
}

// Error returns the handler's error, prefixed with the outcome.
func (e *OutcomeError) Error() string {
	msg := "warren: " + e.Outcome.String()
	if e.Outcome == OutcomeRetry && e.Delay > 0 {
		msg += " after " + e.Delay.String()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the handler's error.
func (e *OutcomeError) Unwrap() error { return e.Err }

// Requeue returns err marked with OutcomeRequeue: the broker delivers the
// message again at once. err may be nil.
func Requeue(err error) error { return &OutcomeError{Outcome: OutcomeRequeue, Err: err} }

// Reject returns err marked with OutcomeReject: the broker dead-letters the
// message if its queue has a dead-letter exchange, and deletes it otherwise.
// err may be nil.
func Reject(err error) error { return &OutcomeError{Outcome: OutcomeReject, Err: err} }

// RetryAfter returns err marked with OutcomeRetry: the message is delivered
// again after about d, through the broker. d is rounded up to the next delay
// of the consumer's RetryPolicy (the longest if d exceeds them all); d <= 0
// means the policy's delay for the attempt. Every retry counts towards
// RetryPolicy.MaxAttempts. err may be nil.
func RetryAfter(d time.Duration, err error) error {
	return &OutcomeError{Outcome: OutcomeRetry, Delay: max(d, 0), Err: err}
}
