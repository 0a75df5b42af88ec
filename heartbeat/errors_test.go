package heartbeat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDeadPeerError(t *testing.T) {
	tests := []struct {
		name      string
		err       *DeadPeerError
		wantParts []string
	}{
		{
			name:      "seconds",
			err:       &DeadPeerError{Silence: 1234567891 * time.Nanosecond, Limit: time.Second},
			wantParts: []string{"heartbeat: dead peer", "1.235s", "limit 1s"},
		},
		{
			name:      "sub-millisecond kept exact",
			err:       &DeadPeerError{Silence: 1500 * time.Microsecond, Limit: time.Millisecond},
			wantParts: []string{"1.5ms", "limit 1ms"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.err.Error()
			for _, part := range tc.wantParts {
				if !strings.Contains(msg, part) {
					t.Errorf("Error() = %q, want it to contain %q", msg, part)
				}
			}
			wrapped := fmt.Errorf("conn: %w", tc.err)
			if !errors.Is(wrapped, ErrDeadPeer) {
				t.Errorf("errors.Is(%v, ErrDeadPeer) = false, want true", wrapped)
			}
			if errors.Is(wrapped, ErrInvalidLimit) {
				t.Errorf("errors.Is(%v, ErrInvalidLimit) = true, want false", wrapped)
			}
			var dpe *DeadPeerError
			if !errors.As(wrapped, &dpe) || dpe != tc.err {
				t.Errorf("errors.As did not recover the *DeadPeerError")
			}
		})
	}
}
