// Package testkit holds what the integration test packages share: a recorder
// of a Supervisor's events with matchers, and a test logger. It is a plain
// package (not a _test.go file) so that every test package can import it.
package testkit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
)

// Recorder keeps every event a supervisor delivered, in order. Pass its
// Handle method as conn.Options.OnEvent.
type Recorder struct {
	mu     sync.Mutex
	events []conn.Event
	wake   chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{wake: make(chan struct{}, 1)} }

// Handle records e; it never blocks.
func (r *Recorder) Handle(e conn.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Snapshot returns a copy of the events recorded so far.
func (r *Recorder) Snapshot() []conn.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]conn.Event(nil), r.events...)
}

// Count returns how many events have been recorded, an index for WaitFor.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// WaitFor returns the first event at index >= from that matches, and the
// index after it; it fails the test after timeout, listing what it saw.
func (r *Recorder) WaitFor(t testing.TB, from int, timeout time.Duration, what string, match func(conn.Event) bool) (conn.Event, int) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		evs := r.Snapshot()
		for i := from; i < len(evs); i++ {
			if match(evs[i]) {
				return evs[i], i + 1
			}
		}
		select {
		case <-r.wake:
		case <-timer.C:
			t.Fatalf("no %s event within %v; events: %s", what, timeout, Describe(r.Snapshot()[from:]))
		}
	}
}

// Kind matches events of kind k.
func Kind(k conn.EventKind) func(conn.Event) bool {
	return func(e conn.Event) bool { return e.Kind == k }
}

// InState matches a change to state s.
func InState(s conn.State) func(conn.Event) bool {
	return func(e conn.Event) bool { return e.Kind == conn.EventStateChanged && e.State == s }
}

// ConsumerEvent matches events of kind k about the named consumer.
func ConsumerEvent(k conn.EventKind, consumer string) func(conn.Event) bool {
	return func(e conn.Event) bool { return e.Kind == k && e.Consumer == consumer }
}

// Describe lists events one per line, for failure messages.
func Describe(evs []conn.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("\n  %s %s state=%s url=%s consumer=%q queue=%q err=%v", e.Time.Format("15:04:05.000"),
			e.Kind, e.State, e.URL, e.Consumer, e.Queue, e.Err)
	}
	return s
}
