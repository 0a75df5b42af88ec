package conn

import (
	"errors"
	"fmt"
	"time"

	"github.com/warrenmq/warren/heartbeat"
)

// validate checks defaulted options and returns every problem found, each
// wrapping ErrInvalidOptions. URLs appear redacted.
func (o Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if len(o.URLs) == 0 {
		bad("URLs: at least one broker URL is required")
	}
	for i, raw := range o.URLs {
		if problem := urlProblem(raw); problem != "" {
			bad("URLs[%d] %s: %s", i, RedactURL(raw), problem)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Heartbeat", o.Heartbeat},
		{"DeadPeerLimit", o.DeadPeerLimit},
		{"DialTimeout", o.DialTimeout},
		{"CloseTimeout", o.CloseTimeout},
		{"StallThreshold", o.StallThreshold},
		{"BlockedTimeout", o.BlockedTimeout},
	} {
		if d.v < 0 {
			bad("%s must not be negative, got %v", d.name, d.v)
		}
	}
	if o.Heartbeat > 0 && o.Heartbeat < time.Second {
		bad("Heartbeat must be at least 1s (AMQP counts it in whole seconds), got %v", o.Heartbeat)
	}
	if o.Heartbeat > 0 && o.DeadPeerLimit > 0 {
		if err := heartbeat.CheckLimit(o.DeadPeerLimit, o.Heartbeat); err != nil {
			bad("DeadPeerLimit: %v", err)
		}
	}
	if o.EventBuffer < 0 {
		bad("EventBuffer must not be negative, got %d", o.EventBuffer)
	}
	if err := o.Reconnect.Validate(); err != nil {
		bad("Reconnect: %v", err)
	}
	return errors.Join(errs...)
}
