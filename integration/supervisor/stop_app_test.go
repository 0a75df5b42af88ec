package supervisor_test

import (
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/reconnect"
)

// TestStopAppBacksOffWithoutStorm stops the broker application for 3 s: the
// supervisor must keep dialing under capped backoff (no dial storm) and be
// Ready again once the application is back.
func TestStopAppBacksOffWithoutStorm(t *testing.T) {
	b := broker.Shared(t)
	s, rec := start(t, conn.Options{
		URLs:      []string{b.URL},
		Reconnect: reconnect.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second},
	})
	waitReady(t, s)
	before := s.Stats()

	if err := b.Faults.StopApp(faultCtx(t)); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = b.Faults.StartApp(faultCtx(t)) })
	rec.WaitFor(t, 0, defaultTestTimeout, "Reconnecting", state(conn.Reconnecting))
	// Wait out the rest of 3 s of outage on the test's side.
	time.Sleep(time.Until(stopped.Add(3 * time.Second)))
	if err := b.Faults.StartApp(faultCtx(t)); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	waitReady(t, s)
	readyAfter := time.Since(started)
	outage := time.Since(stopped)
	after := s.Stats()
	dials := after.Dials - before.Dials
	failed := after.FailedDials - before.FailedDials
	t.Logf("stop_app outage %v (Ready %v after start_app returned); %d dials, %d failed", outage, readyAfter, dials, failed)

	// With 100ms doubling to a 2 s cap, the outage (3 s plus the time start_app
	// takes) holds about 8 to 12 attempts; a fixed short interval would make
	// dozens. Allow generous slack for a slow start_app.
	if maxDials := uint64(outage/(500*time.Millisecond)) + 6; dials > maxDials {
		t.Errorf("%d dials in a %v outage: a dial storm (want at most %d)", dials, outage, maxDials)
	}
	if failed == 0 {
		t.Errorf("no failed dial while the application was stopped")
	}
	// Delays grow: the DialFailed events must carry non-decreasing nominal steps.
	var delays []time.Duration
	for _, e := range rec.Snapshot() {
		if e.Kind == conn.EventDialFailed && e.Delay > 0 {
			delays = append(delays, e.Delay)
		}
	}
	if len(delays) >= 3 && delays[len(delays)-1] < 200*time.Millisecond {
		t.Errorf("backoff did not grow: delays %v", delays)
	}
}
