package conn

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// attack6BlockedBurst writes connection.blocked (true) and unblocked (false)
// frames in one TCP write, so that amqp091-go parses them all out of one
// socket Read.
func attack6BlockedBurst(t *testing.T, fc *pubFakeConn, seq ...bool) {
	t.Helper()
	var buf []byte
	for _, on := range seq {
		var p []byte
		if on {
			p = pubFakeMethodPayload(10, 60, pubFakeAppendShortString(nil, "low on memory"))
		} else {
			p = pubFakeMethodPayload(10, 61, nil)
		}
		buf = append(buf, pubFakeFrameMethod)
		buf = binary.BigEndian.AppendUint16(buf, 0)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
		buf = append(buf, pubFakeFrameEnd)
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	if _, err := fc.c.Write(buf); err != nil {
		t.Fatal(err)
	}
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
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		OnEvent: events.handle, BlockedTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNow(t, s) })
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, true, false, true, false, true)
	timeout := time.After(8 * time.Second)
	for {
		select {
		case e := <-events.ch:
			if e.Kind == EventBlockedTimeout {
				return
			}
		case <-timeout:
			t.Fatalf("the broker blocked the connection (last word connection.blocked) but no EventBlockedTimeout within 8s "+
				"with BlockedTimeout 1s; Blocked()=%v, BlockedTimeouts=%d", s.Blocked(), s.Stats().BlockedTimeouts)
		}
	}
}
