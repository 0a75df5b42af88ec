package supervisor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/reconnect"
)

// TestPermanentErrorsStopAfterOneDial: a wrong password and an unknown vhost
// are not going to fix themselves; the supervisor must stop with that error,
// never retry, and never show the password. An unknown vhost stops it after
// one dial. RabbitMQ answers a wrong password by dropping the socket, which a
// network reset at login also does: that is believed on the second dial.
func TestPermanentErrorsStopAfterOneDial(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	tests := []struct {
		name, url, want string
		dials           uint64
	}{
		{"wrong password", b.URLWith(user, "not-"+pass, "/"), "403", 2},
		{"unknown vhost", b.URLWith(user, pass, "no-such-vhost"), "vhost", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := start(t, conn.Options{URLs: []string{tt.url}, Reconnect: fastPolicy()})
			select {
			case <-s.Done():
			case <-time.After(defaultTestTimeout):
				t.Fatalf("still running after a %s; events: %s", tt.name, describe(rec.Snapshot()))
			}
			err := s.Err()
			if !reconnect.IsPermanent(err) {
				t.Errorf("Err() = %v, want a permanent error", err)
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("Err() = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("Err() leaks the password: %v", err)
			}
			if st := s.Stats(); st.Dials != tt.dials {
				t.Errorf("%d dials, want exactly %d", st.Dials, tt.dials)
			}
			if werr := s.WaitReady(context.Background()); !errors.Is(werr, conn.ErrClosed) {
				t.Errorf("WaitReady = %v, want ErrClosed", werr)
			}
			if s.State() != conn.Closed {
				t.Errorf("state %v, want Closed", s.State())
			}
		})
	}
}
