package conn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

// A connection whose ready hook fails after the broker blocked it (the
// drain started during the hook): the session is abandoned by connect's end
// path. No event about the block may be emitted (it was never announced),
// Blocked() stays false, and no goroutine is left after Close.
func TestAttack7BlockedDuringFailingHook(t *testing.T) {
	leakOpt := goleak.IgnoreCurrent()
	b := startPubFakeBroker(t)
	var emu sync.Mutex
	var evs []Event
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		OnEvent: func(e Event) { emu.Lock(); evs = append(evs, e); emu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	waitReadyAgain(t, s, 1)
	var calls atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.AddHook(ctx, Hook{Name: "h", Up: func(ctx context.Context, c *amqp.Connection) error {
		n := calls.Add(1)
		if n == 1 || n > 3 {
			return nil
		}
		fc := newestFakeConn(b)
		attack6BlockedBurstNoFail(fc, attack7Alternating(int(n)*5+1)...)
		time.Sleep(50 * time.Millisecond)
		if s.Blocked() {
			t.Errorf("Blocked() true while a hook runs on a connection not yet Ready")
		}
		return errors.New("hook fails")
	}})
	if err != nil {
		t.Fatal(err)
	}
	newestFakeConn(b).kill()
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	waitReadyAgain(t, s, 2)
	if s.Blocked() {
		t.Errorf("Blocked() true on a fresh connection")
	}
	closeNow(t, s)
	b.stop()
	emu.Lock()
	for i, e := range evs {
		if e.Kind == EventBlocked || e.Kind == EventUnblocked {
			t.Errorf("event %d: %v for a connection never announced", i, e.Kind)
		}
	}
	emu.Unlock()
	goleak.VerifyNone(t, leakOpt)
}
