package conn

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

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
		if _, err := amqp.ParseURI(raw); err != nil {
			bad("URLs[%d] %s: %v", i, RedactURL(raw), parseErrorText(err))
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

// parseErrorText describes a URL parse error without the URL itself, which
// net/url puts into its error text together with any password.
func parseErrorText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
