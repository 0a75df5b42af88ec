package conn

import (
	"context"
	"errors"
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

func TestDeclareErrorMarksRefusalsPermanent(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"406 inequivalent arguments", &amqp.Error{Code: amqp.PreconditionFailed, Reason: "PRECONDITION_FAILED - inequivalent arg", Server: true}, true},
		{"404 missing exchange", &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no exchange", Server: true}, false},
		{"405 exclusive queue in use", &amqp.Error{Code: amqp.ResourceLocked, Reason: "RESOURCE_LOCKED", Server: true}, false},
		{"503 unknown exchange kind", &amqp.Error{Code: amqp.CommandInvalid, Reason: "COMMAND_INVALID - invalid exchange type 'topc'", Server: true}, true},
		{"403 reserved name", &amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED - exchange name 'amq.x' contains reserved prefix 'amq.*'", Server: true}, true},
		{"530 not allowed", &amqp.Error{Code: amqp.NotAllowed, Reason: "NOT_ALLOWED", Server: true}, true},
		{"540 not implemented", &amqp.Error{Code: amqp.NotImplemented, Reason: "NOT_IMPLEMENTED", Server: true}, true},
		{"502 syntax error", &amqp.Error{Code: amqp.SyntaxError, Reason: "SYNTAX_ERROR", Server: true}, true},
		{"503 from amqp091-go itself", amqp.ErrCommandInvalid, false},
		{"320 connection forced", &amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED", Server: true}, false},
		{"541 internal error", &amqp.Error{Code: amqp.InternalError, Reason: "INTERNAL_ERROR", Server: true}, false},
		{"connection closed", amqp.ErrClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("warren: declare queue %q: %w", "orders", tt.err)
			got := declareError(wrapped)
			if p := reconnect.IsPermanent(got); p != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", p, tt.permanent)
			}
			if got.Error() != wrapped.Error() {
				t.Errorf("message changed to %q", got)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("%v no longer wraps the broker's error", got)
			}
		})
	}
}

func TestDeclareTopologyValidatesBeforeRegistering(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	remove, err := s.DeclareTopology(context.Background(), Topology{Bindings: []Binding{{Exchange: "x"}}})
	if !errors.Is(err, ErrInvalidTopology) || remove != nil {
		t.Fatalf("DeclareTopology(invalid) = %v, %v; want ErrInvalidTopology", remove != nil, err)
	}
	remove, err = s.DeclareTopology(context.Background(), Topology{Queues: []*Queue{{}}})
	if err != nil || remove == nil {
		t.Fatalf("DeclareTopology(valid) on an unready supervisor = %v; want it registered", err)
	}
	s.mu.Lock()
	n := len(s.hooks)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d hooks registered, want 1", n)
	}
	remove()
}
