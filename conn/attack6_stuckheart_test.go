package conn

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The broker stops reading (as a blocked RabbitMQ does) while a large
// publish is being written: the write holds amqp091-go's send lock, so the
// heartbeater's next heartbeat waits on it, and the heartbeater no longer
// takes the read deadlines the reader hands it. A blocked/unblocked burst
// then arrives: who makes room on ss.blocks for the reader?
func TestAttack6BlockedBurstWhileHeartbeaterStuck(t *testing.T) {
	attack6StuckHeartbeater(t, false)
}

// The same, then the socket dies: the stuck write fails and amqp091-go's
// send shuts the connection down on the writer's goroutine, closing
// ss.blocks under the reader still waiting to send on it.
func TestAttack6BlockedBurstWhileHeartbeaterStuckThenLoss(t *testing.T) {
	attack6StuckHeartbeater(t, true)
}

func attack6StuckHeartbeater(t *testing.T, kill bool) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisorWith(t, b, Options{Heartbeat: time.Second, DeadPeerLimit: 30 * time.Second, OwedReplyLimit: -1, TCPUserTimeout: -1})
	ctx := pubTestCtx(t)
	fc := latestFakeConn(t, b)
	ch, err := s.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mid := fc.stallMidBody()
	defer fc.cancelStallMidBody(mid)
	go func() {
		// Larger than the socket buffers: stuck in a write once the broker stalls.
		_ = ch.PublishWithContext(context.Background(), "", "q", false, false,
			amqp.Publishing{Body: make([]byte, 64<<20)})
	}()
	select {
	case <-mid:
	case <-time.After(5 * time.Second):
		t.Fatal("the broker never stalled mid-body")
	}
	time.Sleep(1500 * time.Millisecond) // the heartbeater's next tick waits on the send lock
	// The broker's last word is "blocked".
	attack6BlockedBurst(t, fc, true, false, true, false, true)
	if kill {
		time.Sleep(200 * time.Millisecond)
		fc.kill()
		waitReadyAgain(t, s, 2)
		return
	}
	if !attack6WaitBlocked(t, s, true, 3*time.Second) {
		t.Fatalf("Blocked()=false 3s after the broker's last word was connection.blocked (state %v)", s.State())
	}
}
