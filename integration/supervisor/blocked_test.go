package supervisor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// memoryAlarm raises the broker's memory alarm and clears it at cleanup.
func memoryAlarm(t testing.TB, b *broker.Broker) (clear func()) {
	t.Helper()
	if err := b.Faults.SetMemoryAlarm(faultCtx(t), true); err != nil {
		t.Fatal(err)
	}
	cleared := false
	clear = func() {
		if cleared {
			return
		}
		cleared = true
		if err := b.Faults.SetMemoryAlarm(faultCtx(t), false); err != nil {
			t.Errorf("clear memory alarm: %v", err)
		}
	}
	t.Cleanup(clear)
	return clear
}

// publishOnce publishes on a fresh channel: the broker blocks a connection
// only once it publishes during an alarm. The publish itself does not wait
// for a confirm, so it returns even while the broker has stopped reading.
func publishOnce(t testing.TB, s *conn.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	ch, err := s.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx, "", "warren-nowhere", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func TestMemoryAlarmBlocksAndClears(t *testing.T) {
	b := broker.Shared(t)
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	waitReady(t, s)
	clear := memoryAlarm(t, b)
	publishOnce(t, s)
	_, i := rec.WaitFor(t, 0, defaultTestTimeout, "Blocked", kind(conn.EventBlocked))
	if !s.Blocked() {
		t.Error("Blocked() = false after the Blocked event")
	}
	if st := s.State(); st != conn.Ready {
		t.Errorf("state %v while blocked, want Ready (blocked is a flag, not a state)", st)
	}
	clear()
	rec.WaitFor(t, i, defaultTestTimeout, "Unblocked", kind(conn.EventUnblocked))
	if s.Blocked() {
		t.Error("Blocked() = true after the Unblocked event")
	}
}

// TestBlockedTimeoutRedials: with BlockedTimeout set, a connection blocked for
// longer is closed and a new one dialed; the new one is Ready (a connection
// that has not published is not blocked).
func TestBlockedTimeoutRedials(t *testing.T) {
	b := broker.Shared(t)
	s, rec := start(t, conn.Options{URLs: []string{b.URL}, BlockedTimeout: time.Second, Reconnect: fastPolicy()})
	waitReady(t, s)
	memoryAlarm(t, b)
	publishOnce(t, s)
	blocked, i := rec.WaitFor(t, 0, defaultTestTimeout, "Blocked", kind(conn.EventBlocked))
	timedOut, i := rec.WaitFor(t, i, defaultTestTimeout, "BlockedTimeout", kind(conn.EventBlockedTimeout))
	if held := timedOut.Time.Sub(blocked.Time); held < 900*time.Millisecond || held > 3*time.Second {
		t.Errorf("closed after being blocked %v, want about 1s", held)
	}
	_, i = rec.WaitFor(t, i, defaultTestTimeout, "Reconnecting", state(conn.Reconnecting))
	rec.WaitFor(t, i, defaultTestTimeout, "Ready", state(conn.Ready))
	if s.Blocked() {
		t.Error("the new connection reports Blocked")
	}
	if st := s.Stats(); st.BlockedTimeouts != 1 {
		t.Errorf("BlockedTimeouts = %d, want 1", st.BlockedTimeouts)
	}
}

// TestCloseWhileBlockedIsBounded: a blocked broker does not read the close
// frame; amqp091-go's own Close waited out the whole alarm. warren's Close
// must return within its context.
func TestCloseWhileBlockedIsBounded(t *testing.T) {
	b := broker.Shared(t)
	s, err := conn.New(conn.Options{URLs: []string{b.URL}, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	memoryAlarm(t, b)
	publishOnce(t, s)
	deadline := time.Now().Add(defaultTestTimeout)
	for !s.Blocked() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !s.Blocked() {
		t.Fatal("connection never blocked")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = s.Close(ctx)
	took := time.Since(begin)
	t.Logf("Close while blocked: %v after %v", err, took)
	// The handshake is cut short before the deadline, so Close reports the
	// teardown's own result, not merely that its context ran out.
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close returned %v: teardown did not finish inside its context", err)
	}
	// Slack for timers firing late on a loaded CI machine, as above.
	if took > 750*time.Millisecond {
		t.Errorf("Close while blocked took %v, want within its 500ms context", took)
	}
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("supervisor still running 2s after Close")
	}
}
