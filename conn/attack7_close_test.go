package conn

import (
	"context"
	"testing"
	"time"
)

// Close while amqp091-go's reader waits to send the 17th notification of a
// first burst: Close's bound cuts the close handshake by closing the
// socket; a write then fails (amqp091-go's heartbeater, or the close
// handshake's) and amqp091-go shuts the connection down on that goroutine,
// closing ss.blocks under the waiting reader: send on closed channel.
// Nothing but a Close is needed once the burst is in.
func TestAttack7CloseDuringFirstBurstStallDoesNotPanic(t *testing.T) {
	if !attack7InChild(t) {
		return
	}
	b := startPubFakeBroker(t)
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		Heartbeat: time.Second, CloseTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitReadyAgain(t, s, 1)
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, attack7Alternating(17)...)
	time.Sleep(100 * time.Millisecond) // the reader parses the burst, waits on the 17th
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Close(ctx)
	t.Logf("Close returned after %v: %v", time.Since(start), err)
	time.Sleep(6 * time.Second) // the reader's 5 s wait ends
}

// The same with default Options and a first burst of 20 (a 20 s stall
// before the fix): Close overran CloseTimeout ("not finished within
// CloseTimeout") and the process then panicked.
func TestAttack7CloseDuringFirstBurstStallDefaults(t *testing.T) {
	if !attack7InChild(t) {
		return
	}
	b := startPubFakeBroker(t)
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	waitReadyAgain(t, s, 1)
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, attack7Alternating(20)...)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err = s.Close(context.Background())
	if err != nil {
		t.Errorf("Close after %v: %v", time.Since(start), err)
	}
	// A reader left waiting panics when its first 5 s wait ends, on the
	// channel Close closed: 6 s shows it without waiting out all of them.
	time.Sleep(6 * time.Second)
}
