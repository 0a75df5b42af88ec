package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
)

// supervisorCloseTimeout bounds the Close that Start registers for cleanup.
const supervisorCloseTimeout = 10 * time.Second

// Start creates a supervisor with a Recorder as its event handler, the quiet
// test logger and FastPolicy unless opts set their own, and closes it at
// cleanup, failing the test if Close fails.
func Start(t testing.TB, opts conn.Options) (*conn.Supervisor, *Recorder) {
	t.Helper()
	rec := NewRecorder()
	opts.OnEvent = rec.Handle
	if opts.Logger == nil {
		opts.Logger = QuietLogger(t)
	}
	if opts.Reconnect == (conn.Options{}).Reconnect {
		opts.Reconnect = FastPolicy()
	}
	s, err := conn.New(opts)
	if err != nil {
		t.Fatalf("conn.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), supervisorCloseTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close at cleanup: %v", err)
		}
	})
	return s, rec
}
