package conn

import (
	"testing"
	"time"
)

// A block that ends and begins again is a new block: BlockedTimeout counts
// from its start, not from the start of the block before it.
func TestAttack6BlockedTimeoutCountsFromTheNewBlock(t *testing.T) {
	b := startPubFakeBroker(t)
	events := newEventLog()
	const timeout = 1500 * time.Millisecond
	s := startFakeSupervisorWith(t, b, Options{OnEvent: events.handle, BlockedTimeout: timeout})
	fc := latestFakeConn(t, b)
	if err := fc.blocked(true); err != nil {
		t.Fatal(err)
	}
	if !attack6WaitBlocked(t, s, true, 2*time.Second) {
		t.Fatal("never blocked")
	}
	time.Sleep(time.Second)
	// The alarm clears and trips again at once: unblocked, then blocked.
	attack6BlockedBurst(t, fc, false, true)
	second := time.Now()
	if !events.await(EventBlockedTimeout, 3*time.Second) {
		t.Fatal("no EventBlockedTimeout")
	}
	if d := time.Since(second); d < timeout-100*time.Millisecond {
		t.Fatalf("EventBlockedTimeout %v after the block began (BlockedTimeout %v): the timer kept the deadline of the block before", d, timeout)
	}
}
