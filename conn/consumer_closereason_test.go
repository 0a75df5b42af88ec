package conn

import (
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestCloseReasonPrefersTheBrokersReason: an RPC that amqp091-go failed with
// ErrClosed because the broker closed the channel reports the broker's
// reason (a consume on a missing queue is a 404, not a 504), and any other
// error is left alone.
func TestCloseReasonPrefersTheBrokersReason(t *testing.T) {
	notFound := &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no queue 'q'"}
	withReason := func() <-chan *amqp.Error {
		ch := make(chan *amqp.Error, 1)
		ch <- notFound
		return ch
	}
	other := errors.New("boom")
	tests := []struct {
		name   string
		err    error
		closed <-chan *amqp.Error
		want   error
	}{
		{"ErrClosed with a reason", amqp.ErrClosed, withReason(), notFound},
		{"ErrClosed, no reason yet", amqp.ErrClosed, make(chan *amqp.Error, 1), amqp.ErrClosed},
		{"another error", other, withReason(), other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := closeReason(tc.err, tc.closed); got != tc.want {
				t.Fatalf("closeReason(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
