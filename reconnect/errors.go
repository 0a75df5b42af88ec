package reconnect

import "errors"

// Sentinel errors returned by this package. Callers match them with errors.Is;
// the returned errors wrap them with details.
var (
	// ErrInvalidPolicy is wrapped by every error from Policy.Validate and
	// NewSchedule that describes a bad Policy field.
	ErrInvalidPolicy = errors.New("reconnect: invalid policy")

	// ErrGaveUp is wrapped by the error Schedule.Next returns once the
	// policy's MaxAttempts or MaxElapsed limit is reached.
	ErrGaveUp = errors.New("reconnect: gave up")

	// ErrInterrupted is returned by Wait when its kick channel delivers or is
	// closed before the delay has elapsed.
	ErrInterrupted = errors.New("reconnect: wait interrupted")
)
