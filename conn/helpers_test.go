package conn

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// closeNow closes s within defaultTestTimeout and fails the test otherwise.
func closeNow(t testing.TB, s *Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// closedPortURL returns an amqp URL on a loopback port nothing listens on, so
// every dial fails at once with ECONNREFUSED: a real, transient dial failure.
func closedPortURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "amqp://guest:secretpw@" + addr + "/"
}

// eventLog collects events from OnEvent for assertions.
type eventLog struct {
	ch chan Event
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan Event, 1024)} }

func (l *eventLog) handle(e Event) {
	select {
	case l.ch <- e:
	default:
	}
}
