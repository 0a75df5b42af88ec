package conn

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestOutcomeErrors(t *testing.T) {
	cause := errors.New("db down")
	tests := []struct {
		name  string
		err   error
		want  Outcome
		delay time.Duration
		text  string
	}{
		{"Requeue", Requeue(cause), OutcomeRequeue, 0, "warren: Requeue: db down"},
		{"Reject nil", Reject(nil), OutcomeReject, 0, "warren: Reject"},
		{"RetryAfter", RetryAfter(time.Minute, cause), OutcomeRetry, time.Minute, "warren: Retry after 1m0s: db down"},
		{"RetryAfter negative", RetryAfter(-time.Second, cause), OutcomeRetry, 0, "warren: Retry: db down"},
		{"wrapped", fmt.Errorf("order 7: %w", Reject(cause)), OutcomeReject, 0, "order 7: warren: Reject: db down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var oe *OutcomeError
			if !errors.As(tt.err, &oe) || oe.Outcome != tt.want || oe.Delay != tt.delay {
				t.Fatalf("errors.As(%v) = %+v, want outcome %v delay %v", tt.err, oe, tt.want, tt.delay)
			}
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("Error() = %q, want %q", got, tt.text)
			}
			if oe.Err != nil && !errors.Is(tt.err, cause) {
				t.Errorf("errors.Is(%v, cause) = false", tt.err)
			}
		})
	}
	if got := Outcome(9).String(); got != "Outcome(9)" {
		t.Errorf("Outcome(9).String() = %q", got)
	}
}
