package conn

import (
	"testing"
	"time"
)

// TestAttack4StaleParkTimerCutsNextBackoff: a parked message's backoff timer
// fires (its AfterFunc goroutine is started, so stopPark returns false) while
// an early release (releaseOnAckLocked / unparkNackedBy) holds p.mu. The
// release puts the message back in the sequence; the writer writes it and the
// broker nacks it again, so it is parked again with a new timer, all before
// the stale callback gets p.mu. The stale unpark then sees c.parked (the new
// park) and releases it at once: the new backoff is skipped (the schedule
// shrinks; ErrNacked may come before the whole schedule). The write and the
// nack are simulated under p.mu here (nackedLocked), the rest is real.
func TestAttack4StaleParkTimerCutsNextBackoff(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeNack })
	const backoff = 200 * time.Millisecond
	_, p := startPubTest(t, b, PublisherOptions{nackBackoff: backoff})
	ctx := pubTestCtx(t)
	c, err := p.PublishAsync(ctx, "ex", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait until c is parked after its first nack.
	for deadline := time.Now().Add(defaultTestTimeout); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		parked := c.parked
		p.mu.Unlock()
		if parked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never parked")
		}
	}
	p.mu.Lock()
	// The park timer fires meanwhile; its callback waits for p.mu.
	time.Sleep(backoff + 100*time.Millisecond)
	if c.stopPark != nil && c.stopPark() {
		p.mu.Unlock()
		t.Fatal("timer did not fire")
	}
	// An early release (an ack on a later channel, say).
	p.releaseParkedLocked(forgivenAck, func(*Confirmation) bool { return true })
	if c.parked {
		p.mu.Unlock()
		t.Fatal("not released")
	}
	// Written again and nacked again before the stale callback runs.
	p.nackedLocked(c)
	if !c.parked {
		p.mu.Unlock()
		t.Fatal("not parked again")
	}
	parkedAt := time.Now()
	p.mu.Unlock()

	time.Sleep(backoff / 2)
	if n := len(b.messages()); n != 1 {
		t.Fatalf("parked again with a %v backoff, but the broker got %d publishes within %v: released early by the first park's stale timer (unpark checks only c.parked)",
			p.nackBackoff(1), n, time.Since(parkedAt).Round(time.Millisecond))
	}
}
