package conn

import (
	"errors"
	"fmt"
	"time"
)

// DefaultDedupeWindow and DefaultDedupeSize are the defaults of
// DedupeOptions: ten minutes covers a reconnect and its redeliveries many
// times over; 100,000 ids of 36 bytes (a UUID) hold about 10 MB.
const (
	DefaultDedupeWindow = 10 * time.Minute
	DefaultDedupeSize   = 100_000
)

// DedupeOptions switches on duplicate suppression for a consumer. The
// consumer remembers the MessageId of every delivery whose handler returned
// nil (even if the ack then failed with the channel), and acknowledges a
// later delivery with a remembered MessageId without calling the handler. A
// handler that settles a delivery itself does not make it remembered.
//
// Duplicates happen because RabbitMQ delivers at least once: a publisher
// republishes a message whose confirm was lost with its connection (the
// broker may have stored the first copy); the broker redelivers every
// unacknowledged delivery when a consumer's channel or connection is lost,
// including those whose handler had finished but whose ack was not sent or
// not received; a retry copy whose original's ack was lost is delivered
// besides the original. Each of these carries the original MessageId.
//
// The window is local to one consumer and one process: a duplicate
// delivered to another consumer, or after a restart, is not caught; nor is
// one delivered while the first is still being handled (it is not yet
// remembered). Messages without a MessageId are never suppressed. When Size
// ids are held, remembering one more forgets the oldest (their duplicates
// are then handled again); ids older than Window are forgotten too.
type DedupeOptions struct {
	// Window is how long an acknowledged MessageId is remembered. Defaults
	// to DefaultDedupeWindow (10 minutes).
	Window time.Duration
	// Size bounds how many MessageIds are remembered; the oldest is
	// forgotten first. Defaults to DefaultDedupeSize (100,000).
	Size int
}

// withDefaults returns o with zero fields defaulted.
func (o DedupeOptions) withDefaults() DedupeOptions {
	if o.Window == 0 {
		o.Window = DefaultDedupeWindow
	}
	if o.Size == 0 {
		o.Size = DefaultDedupeSize
	}
	return o
}

// validate reports the problems of defaulted options, each wrapping
// ErrInvalidConsumerOptions.
func (o DedupeOptions) validate() error {
	var errs []error
	if o.Window < 0 {
		errs = append(errs, fmt.Errorf("%w: Dedupe.Window must not be negative, got %v", ErrInvalidConsumerOptions, o.Window))
	}
	if o.Size < 0 {
		errs = append(errs, fmt.Errorf("%w: Dedupe.Size must not be negative, got %d", ErrInvalidConsumerOptions, o.Size))
	}
	return errors.Join(errs...)
}
