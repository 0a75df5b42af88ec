package conn

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
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

// await reads logged events until one of kind k (true) or until within
// has passed (false).
func (l *eventLog) await(k EventKind, within time.Duration) bool {
	timeout := time.After(within)
	for {
		select {
		case e := <-l.ch:
			if e.Kind == k {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// testSeeds returns the seeds a randomized test runs: replay alone when it
// is set (a -x.seed flag), else runs seeds from the clock.
func testSeeds(replay int64, runs int) []int64 {
	if replay != 0 {
		return []int64{replay}
	}
	base := time.Now().UnixNano()
	seeds := make([]int64, runs)
	for i := range seeds {
		seeds[i] = base + int64(i)
	}
	return seeds
}
