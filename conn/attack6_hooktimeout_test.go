package conn

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A block that begins while a hook added to the Ready connection runs
// (runAdded), and lasts past BlockedTimeout, must close the connection
// even though the loop parks right after the hook.
func TestAttack6BlockedTimeoutBlockBegunInAddedHook(t *testing.T) {
	b := startPubFakeBroker(t)
	events := newEventLog()
	s := startFakeSupervisorWith(t, b, Options{OnEvent: events.handle, BlockedTimeout: 300 * time.Millisecond})
	ctx := pubTestCtx(t)
	var once atomic.Bool
	if _, err := s.AddHook(ctx, Hook{Name: "blocks", Up: func(context.Context, *amqp.Connection) error {
		if once.Swap(true) {
			return nil
		}
		if err := latestFakeConn(t, b).blocked(true); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !events.await(EventBlockedTimeout, 3*time.Second) {
		t.Fatalf("no EventBlockedTimeout: Blocked()=%v", s.Blocked())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("EventBlockedTimeout %v after the hook returned (BlockedTimeout 300ms)", d)
	}
}
