package supervisor_test

import (
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestForcedCloseReconnectsAtOnce: a broker-side close (320) on a healthy
// network must recover in the time of one dial: Reconnecting then Ready, in
// that order, with exactly one new dial and no backoff wait.
func TestForcedCloseReconnectsAtOnce(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	s, rec := start(t, conn.Options{
		URLs:           []string{b.URLWith(user, pass, "/")},
		ConnectionName: t.Name(),
		// The default policy: the immediate first redial must not depend on tuning.
	})
	waitReady(t, s)
	dialsBefore := s.Stats().Dials
	_, from := rec.WaitFor(t, 0, defaultTestTimeout, "Connected", kind(conn.EventConnected))

	if err := b.Faults.CloseConnection(faultCtx(t), t.Name()); err != nil {
		t.Fatal(err)
	}
	lost, i := rec.WaitFor(t, from, defaultTestTimeout, "ConnectionLost", kind(conn.EventConnectionLost))
	var ae *amqp.Error
	if !errors.As(lost.Err, &ae) || ae.Code != amqp.ConnectionForced {
		t.Errorf("lost with %v, want a 320 CONNECTION_FORCED *amqp.Error", lost.Err)
	}
	_, i = rec.WaitFor(t, i, defaultTestTimeout, "Reconnecting", state(conn.Reconnecting))
	ready, _ := rec.WaitFor(t, i, defaultTestTimeout, "Ready", state(conn.Ready))
	outage := ready.Time.Sub(lost.Time)
	t.Logf("outage after a forced close: %v", outage)

	if d := s.Stats().Dials - dialsBefore; d != 1 {
		t.Errorf("recovery took %d dials, want 1", d)
	}
	// One local dial plus the handshake is tens of milliseconds; the first
	// backoff step alone is 100ms±50%.
	if outage > time.Second {
		t.Errorf("outage %v: the first redial was not immediate", outage)
	}
	if got := s.Stats(); got.Reconnects != 1 || got.ConnectionsLost != 1 {
		t.Errorf("stats: reconnects %d lost %d, want 1 and 1", got.Reconnects, got.ConnectionsLost)
	}
}
