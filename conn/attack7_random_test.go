package conn

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

var (
	attack7Seed     = flag.Int64("attack7.seed", 0, "replay one seed of TestAttack7BlockedRandom")
	attack7Runs     = flag.Int("attack7.runs", 4, "seeds TestAttack7BlockedRandom runs")
	attack7MaxFirst = flag.Int("attack7.maxfirst", 16, "largest first burst on a connection (more than 16 reproduces the first-burst defect)")
)

// TestAttack7BlockedRandom mixes blocked/unblocked bursts of 1..20 frames
// in one write (the first burst on each connection at most
// -attack7.maxfirst), connection kills, AddHook and a final Close, and checks:
//
//	flag:   Blocked() ends equal to the broker's last word on the live connection
//	events: Blocked/Unblocked alternate, a Blocked only while connected
//	close:  Blocked() false after Close, no goroutine left
func TestAttack7BlockedRandom(t *testing.T) {
	seeds := testSeeds(*attack7Seed, *attack7Runs)
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runAttack7BlockedRandom(t, seed) })
	}
}

func runAttack7BlockedRandom(t *testing.T, seed int64) {
	defer func() {
		if t.Failed() {
			t.Logf("seed %d (replay with -attack7.seed=%d -attack7.maxfirst=%d)", seed, seed, *attack7MaxFirst)
		}
	}()
	leakOpt := goleak.IgnoreCurrent()
	rng := rand.New(rand.NewSource(seed))
	b := startPubFakeBroker(t)
	var emu sync.Mutex
	var evs []Event
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		OnEvent: func(e Event) { emu.Lock(); evs = append(evs, e); emu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			closeNow(t, s)
		}
	}()
	conns := uint64(1)
	waitReadyAgain(t, s, conns)
	fc := latestFakeConn(t, b)
	word, first := false, true
	var log []string
	var hooks sync.WaitGroup
	steps := 30 + rng.Intn(30)
	for step := 0; step < steps && !t.Failed(); step++ {
		switch r := rng.Intn(10); {
		case r < 6: // a burst
			n := 1 + rng.Intn(20)
			if first && n > *attack7MaxFirst {
				n = *attack7MaxFirst
			}
			seq := make([]bool, n)
			for i := range seq {
				word = !word
				seq[i] = word
			}
			attack6BlockedBurstNoFail(fc, seq...)
			log = append(log, fmt.Sprintf("burst%d->%v", n, word))
			// The first burst is taken (and the drain started) before the
			// next write, unless -attack7.maxfirst asks for the defect.
			if first && *attack7MaxFirst <= blockedBuffer {
				attack7WaitDrainStarted(t, s)
			}
			if rng.Intn(2) == 0 {
				if !attack6WaitBlocked(t, s, word, 7*time.Second) {
					t.Fatalf("step %d: Blocked()=%v, the broker's last word %v (steps %s)", step, s.Blocked(), word, strings.Join(log, " "))
				}
			}
			first = false
		case r < 7: // kill the connection
			fc.kill()
			conns++
			waitReadyAgain(t, s, conns)
			fc = latestFakeConn(t, b)
			word, first = false, true
			log = append(log, "kill")
			if s.Blocked() {
				t.Fatalf("step %d: Blocked() true on a new connection", step)
			}
		case r < 9: // AddHook, from another goroutine or here
			log = append(log, "hook")
			remove := rng.Intn(2) == 0
			add := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				rm, err := s.AddHook(ctx, Hook{Name: "h", Up: func(context.Context, *amqp.Connection) error { return nil }})
				if err == nil && remove {
					rm()
				}
			}
			if rng.Intn(2) == 0 {
				add()
			} else {
				hooks.Add(1)
				go func() { defer hooks.Done(); add() }()
			}
		default:
			time.Sleep(time.Duration(rng.Intn(20)) * time.Millisecond)
		}
	}
	if !attack6WaitBlocked(t, s, word, 7*time.Second) {
		t.Fatalf("end: Blocked()=%v, the broker's last word %v (steps %s)", s.Blocked(), word, strings.Join(log, " "))
	}
	hooks.Wait()
	closed = true
	closeNow(t, s)
	if s.Blocked() {
		t.Errorf("Blocked() true after Close")
	}
	emu.Lock()
	defer emu.Unlock()
	if checkBlockedEvents(t, evs) {
		t.Errorf("events end blocked after Close")
	}
	b.stop() // idempotent; the cleanup calls it again
	goleak.VerifyNone(t, leakOpt)
}

// attack7WaitDrainStarted waits until the live session took its first
// blocked notification and started drainBlocked.
func attack7WaitDrainStarted(t *testing.T, s *Supervisor) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if ss := s.live.Load(); ss != nil {
			ss.blockMu.Lock()
			d := ss.drained
			ss.blockMu.Unlock()
			if d != nil {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the live session never started drainBlocked")
}
