package conn

import (
	"testing"
	"time"
)

// attack6BlockedBurst writes connection.blocked (true) and unblocked (false)
// frames in one TCP write, so that amqp091-go parses them all out of one
// socket Read.
func attack6BlockedBurst(t *testing.T, fc *pubFakeConn, seq ...bool) {
	t.Helper()
	if err := attack6WriteBlockedBurst(fc, seq...); err != nil {
		t.Fatal(err)
	}
}

// attack6WriteBlockedBurst is attack6BlockedBurst's write, for any goroutine.
func attack6WriteBlockedBurst(fc *pubFakeConn, seq ...bool) error {
	var buf []byte
	for _, on := range seq {
		buf = pubFakeAppendFrame(buf, pubFakeFrameMethod, 0, pubFakeBlockedPayload(on))
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_, err := fc.c.Write(buf)
	return err
}

func attack6WaitBlocked(t *testing.T, s *Supervisor, want bool, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s.Blocked() == want {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s.Blocked() == want
}

// A broker whose alarm flaps sends blocked and unblocked in quick
// succession; five or more of them can reach the client in one socket read.
// The last word is "unblocked": Blocked() must end false.
func TestAttack6BlockedBurstEndsUnblocked(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	fc := latestFakeConn(t, b)
	if err := fc.blocked(true); err != nil {
		t.Fatal(err)
	}
	if !attack6WaitBlocked(t, s, true, 2*time.Second) {
		t.Fatal("never blocked")
	}
	// blocked -> unblocked, blocked, unblocked, blocked, unblocked: the broker ends unblocked.
	attack6BlockedBurst(t, fc, false, true, false, true, false)
	// amqp091-go gives a listener 5 s per notification; wait past that.
	if !attack6WaitBlocked(t, s, false, 8*time.Second) {
		t.Fatalf("Blocked() stuck true 8s after the broker's last word was connection.unblocked (state %v)", s.State())
	}
}

// The same burst ending "blocked": the supervisor must know it is blocked,
// and BlockedTimeout must close the connection.
func TestAttack6BlockedBurstEndsBlockedTimeoutFires(t *testing.T) {
	b := startPubFakeBroker(t)
	events := newEventLog()
	s := startFakeSupervisorWith(t, b, Options{OnEvent: events.handle, BlockedTimeout: time.Second})
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, true, false, true, false, true)
	if !events.await(EventBlockedTimeout, 8*time.Second) {
		t.Fatalf("the broker blocked the connection (last word connection.blocked) but no EventBlockedTimeout within 8s "+
			"with BlockedTimeout 1s; Blocked()=%v, BlockedTimeouts=%d", s.Blocked(), s.Stats().BlockedTimeouts)
	}
}
