package conn

import (
	"context"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settledGoroutines waits for the goroutine count to hold still for 50 ms
// and returns it: a parked loop's goroutine exits just after it parks.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	n := runtime.NumGoroutine()
	for stable := 0; stable < 5; {
		time.Sleep(10 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			stable++
		} else {
			n, stable = m, 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutine count never settled (last %d)", m)
		}
	}
	return n
}

// TestReadyConnectionCostsNoGoroutineOfWarrens: a Ready supervisor without
// OnEvent adds exactly the goroutines a raw amqp091-go connection to the same
// broker adds (its reader and heartbeater, and the fake broker's side), none
// of warren's own: the loop parks without one, and amqp091-go's reader takes
// the blocked notifications. A parked goroutine costs a fleet 4 KiB per
// connection (BENCHMARKS.md, issue 18).
func TestReadyConnectionCostsNoGoroutineOfWarrens(t *testing.T) {
	b := startPubFakeBroker(t)
	base := settledGoroutines(t)
	raw, err := amqp.Dial(b.url())
	if err != nil {
		t.Fatal(err)
	}
	rawCost := settledGoroutines(t) - base
	raw.Close()
	base = settledGoroutines(t)
	s, err := New(Options{URLs: []string{b.url()}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s)
	if err := s.WaitReady(pubTestCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := settledGoroutines(t) - base; got != rawCost {
		t.Fatalf("a Ready supervisor costs %d goroutines, a raw connection %d", got, rawCost)
	}
}

// waitParked waits until no goroutine runs s's loop.
func waitParked(t *testing.T, s *Supervisor, seed int64) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for s.wakes.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("seed %d: the loop never parked (wakes %d)", seed, s.wakes.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitSeeded polls cond until it holds or the test timeout passes.
func waitSeeded(t *testing.T, seed int64, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("seed %d: %s never happened", seed, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestParkedLoopWakesForEverything drives a parked loop, in a seeded random
// order, with each thing a Ready connection waits on: the broker blocking
// and unblocking it, killing it, a BlockedTimeout running out, AddHook, and
// finally Close. After every step the loop must have acted (Blocked() and
// its events, a new connection, the hook's Up), and parked again; Close must
// return and leave nothing running (goleak, TestMain). Replay a failure with
// WARREN_PARK_SEED.
func TestParkedLoopWakesForEverything(t *testing.T) {
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv("WARREN_PARK_SEED"), 10, 64); err == nil {
		seed = v
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	b := startPubFakeBroker(t)
	events := newEventLog()
	s := startFakeSupervisorWith(t, b, Options{OnEvent: events.handle, BlockedTimeout: time.Second})
	ups := 0
	for step := 0; step < 24; step++ {
		// On a starved machine a block may outlast BlockedTimeout in case 0
		// too: count connections from what happened, not from the plan.
		conns := s.Stats().Connections
		waitParked(t, s, seed)
		switch rng.Intn(4) {
		case 0: // blocked, then unblocked, each seen by a parked loop
			if err := latestFakeConn(t, b).blocked(true); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			waitSeeded(t, seed, "Blocked() after connection.blocked", s.Blocked)
			waitSeeded(t, seed, "EventBlocked", func() bool { return drainUntil(events, EventBlocked) })
			waitParked(t, s, seed)
			if err := latestFakeConn(t, b).blocked(false); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			waitSeeded(t, seed, "!Blocked() after connection.unblocked", func() bool { return !s.Blocked() })
			waitSeeded(t, seed, "EventUnblocked", func() bool { return drainUntil(events, EventUnblocked) })
		case 1: // the broker kills the connection
			latestFakeConn(t, b).kill()
			conns++
			waitReadyAgain(t, s, conns)
		case 2: // a block outlasts BlockedTimeout: the parked loop redials
			if err := latestFakeConn(t, b).blocked(true); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			waitSeeded(t, seed, "Blocked() after connection.blocked", s.Blocked)
			waitParked(t, s, seed) // the timer alone must wake it
			conns++
			waitReadyAgain(t, s, conns)
			waitSeeded(t, seed, "a new connection unblocked", func() bool { return !s.Blocked() })
		case 3: // a hook added while parked runs on the live connection
			ran := make(chan struct{}, 1)
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			_, err := s.AddHook(ctx, Hook{Name: "added " + strconv.Itoa(step),
				Up: func(context.Context, *amqp.Connection) error {
					select {
					case ran <- struct{}{}:
					default:
					}
					return nil
				}})
			cancel()
			if err != nil {
				t.Fatalf("seed %d: AddHook: %v", seed, err)
			}
			select {
			case <-ran:
				ups++
			default:
				t.Fatalf("seed %d: AddHook returned before the hook's Up ran", seed)
			}
		}
	}
	waitParked(t, s, seed)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("seed %d: Close: %v", seed, err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatalf("seed %d: Close of a parked loop never returned", seed)
	}
	t.Logf("seed %d: %d connections, %d hooks added", seed, s.Stats().Connections, ups)
}

// drainUntil reads logged events until one of kind k (true) or none is left.
func drainUntil(l *eventLog, k EventKind) bool {
	for {
		select {
		case e := <-l.ch:
			if e.Kind == k {
				return true
			}
		default:
			return false
		}
	}
}
