package conn

import (
	"fmt"
	"strconv"
)

// DefaultMaxInFlight is the default PublisherOptions.MaxInFlight.
const DefaultMaxInFlight = 256

// ConfirmLostPolicy says what a Publisher does with a message that was written
// to a channel which then died before the broker confirmed it. The broker may
// or may not have the message: only the caller can decide whether a duplicate
// or a gap is the lesser evil.
type ConfirmLostPolicy int

const (
	// ConfirmLostRepublish publishes the message again, with the same
	// MessageId, on the next channel, until the broker confirms it or the
	// context it was published with ends: at least once, and consumers may
	// see duplicates, which they can drop by MessageId.
	ConfirmLostRepublish ConfirmLostPolicy = iota
	// ConfirmLostFail fails the message with an error wrapping ErrConfirmLost
	// and leaves the decision to republish to the caller.
	ConfirmLostFail
)

// String returns the policy's name, such as "Republish".
func (p ConfirmLostPolicy) String() string {
	switch p {
	case ConfirmLostRepublish:
		return "Republish"
	case ConfirmLostFail:
		return "Fail"
	}
	return "ConfirmLostPolicy(" + strconv.Itoa(int(p)) + ")"
}

// PublisherOptions configures a Publisher. The zero value of every field means
// its default; NewPublisher validates and copies the struct.
type PublisherOptions struct {
	// Name identifies the publisher in logs, errors and stall reports.
	// Defaults to "publisher".
	Name string

	// MaxInFlight bounds the messages accepted and not yet settled (confirmed,
	// nacked, returned or failed), including those waiting to be republished
	// after a lost connection. A publish that finds the window full waits for
	// room, bounded by its context. Defaults to 256.
	MaxInFlight int

	// OnConfirmLost says what happens to a message whose channel died after
	// it was written and before its confirm. Messages accepted but not yet
	// written are always carried over to the next channel. Defaults to
	// ConfirmLostRepublish.
	OnConfirmLost ConfirmLostPolicy

	// Mandatory publishes with the mandatory flag: a message the broker cannot
	// route to any queue fails with a *ReturnedError instead of being dropped
	// by the broker. Defaults to false.
	Mandatory bool
}

// withDefaults returns a copy of o with zero fields defaulted.
func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.Name == "" {
		o.Name = "publisher"
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	return o
}

// validate checks defaulted options; every failure wraps ErrInvalidOptions.
func (o PublisherOptions) validate() error {
	if o.MaxInFlight < 0 {
		return fmt.Errorf("%w: PublisherOptions.MaxInFlight must not be negative, got %d", ErrInvalidOptions, o.MaxInFlight)
	}
	if o.OnConfirmLost != ConfirmLostRepublish && o.OnConfirmLost != ConfirmLostFail {
		return fmt.Errorf("%w: PublisherOptions.OnConfirmLost: unknown policy %v", ErrInvalidOptions, o.OnConfirmLost)
	}
	return nil
}
