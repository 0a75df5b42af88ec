package conn

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

var (
	attack6Seed = flag.Int64("attack6.seed", 0, "replay one seed of TestAttack6Park")
	attack6Runs = flag.Int("attack6.runs", 4, "seeds TestAttack6Park runs")
)

// TestAttack6Park mixes AddHook (from outside and from inside an Up),
// hook removal, connection kills, blocked/unblocked bursts (also sent from
// inside an Up), and Close (from outside or from inside an Up), and checks:
//
//	overlap:  no two Ups/Downs run at once
//	pair:     every successful Up gets exactly one Down before the next Up
//	events:   Blocked/Unblocked alternate, each Blocked after a Connected
//	flag:     Blocked() false after Close; with no BlockedTimeout, Blocked()
//	          ends equal to the broker's last word
//	leak:     no goroutine left after Close
func TestAttack6Park(t *testing.T) {
	seeds := testSeeds(*attack6Seed, *attack6Runs)
	for _, seed := range seeds {
		seed := seed
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runAttack6Park(t, seed) })
	}
}

type attack6Tracker struct {
	mu      sync.Mutex
	running atomic.Int32
	owed    map[string]int // successful Ups not yet taken Down
	errs    []string
}

func (tr *attack6Tracker) fail(format string, args ...any) {
	tr.mu.Lock()
	tr.errs = append(tr.errs, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func runAttack6Park(t *testing.T, seed int64) {
	defer func() {
		if t.Failed() {
			t.Logf("seed %d (replay with -attack6.seed=%d)", seed, seed)
		}
	}()
	leakOpt := goleak.IgnoreCurrent()
	rng := rand.New(rand.NewSource(seed))
	b := startPubFakeBroker(t)
	var emu sync.Mutex
	var evs []Event
	blockedTimeout := time.Duration(0)
	if rng.Intn(2) == 0 {
		blockedTimeout = time.Duration(50+rng.Intn(200)) * time.Millisecond
	}
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		BlockedTimeout: blockedTimeout,
		OnEvent: func(e Event) {
			emu.Lock()
			evs = append(evs, e)
			emu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			closeNow(t, s)
		}
	}()
	tr := &attack6Tracker{owed: map[string]int{}}
	var hrmu sync.Mutex
	hrng := rand.New(rand.NewSource(^seed))
	hint := func(n int) int { hrmu.Lock(); defer hrmu.Unlock(); return hrng.Intn(n) }
	var lastWordMu sync.Mutex
	var lastWord bool // the broker's last blocked/unblocked word on the newest conn
	var lastConn *pubFakeConn
	burst := func(fc *pubFakeConn, n int, r func(int) int) {
		lastWordMu.Lock()
		defer lastWordMu.Unlock()
		if fc != lastConn {
			lastConn, lastWord = fc, false
		}
		var seq []bool
		cur := lastWord
		for i := 0; i < n; i++ {
			cur = !cur
			seq = append(seq, cur)
		}
		if r(3) == 0 && len(seq) > 0 { // also a redundant repeat now and then
			seq = append(seq, cur)
		}
		lastWord = cur
		attack6BlockedBurstNoFail(fc, seq...)
	}
	var closeInside atomic.Bool
	var nested atomic.Int32
	var mkHook func(name string) Hook
	mkHook = func(name string) Hook {
		return Hook{
			Name:  name,
			Phase: Phase(hint(3)),
			Up: func(ctx context.Context, c *amqp.Connection) error {
				if tr.running.Add(1) != 1 {
					tr.fail("%s: Up overlaps another Up/Down", name)
				}
				defer tr.running.Add(-1)
				tr.mu.Lock()
				if tr.owed[name] != 0 {
					tr.errs = append(tr.errs, fmt.Sprintf("%s: Up while a Down is owed", name))
				}
				tr.mu.Unlock()
				switch hint(8) {
				case 0:
					time.Sleep(time.Duration(hint(20)) * time.Millisecond)
				case 1:
					if fc := newestFakeConn(b); fc != nil {
						burst(fc, 1+hint(6), hint)
					}
				case 2:
					if nested.Add(1) < 6 {
						if _, err := s.AddHook(ctx, mkHook(fmt.Sprintf("%s.nested%d", name, nested.Load()))); err != nil && ctx.Err() == nil {
							tr.fail("nested AddHook: %v", err)
						}
					}
				case 3:
					if closeInside.Load() {
						_ = s.Close(ctx)
					}
				case 4:
					if hint(4) == 0 {
						return fmt.Errorf("refused by %s", name)
					}
				}
				tr.mu.Lock()
				tr.owed[name]++
				tr.mu.Unlock()
				return nil
			},
			Down: func(error) {
				if tr.running.Add(1) != 1 {
					tr.fail("%s: Down overlaps another Up/Down", name)
				}
				defer tr.running.Add(-1)
				tr.mu.Lock()
				if tr.owed[name] != 1 {
					tr.errs = append(tr.errs, fmt.Sprintf("%s: Down with %d Ups owed", name, tr.owed[name]))
				}
				tr.owed[name]--
				tr.mu.Unlock()
			},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var removes []func()
	var rmu sync.Mutex
	steps := 20 + rng.Intn(30)
	closeAt := -1
	if rng.Intn(3) == 0 {
		closeAt = rng.Intn(steps)
	}
	if rng.Intn(3) == 0 {
		closeInside.Store(true)
	}
	for i := 0; i < steps; i++ {
		if i == closeAt {
			break
		}
		switch rng.Intn(6) {
		case 0, 1:
			name := fmt.Sprintf("h%d", i)
			h := mkHook(name)
			wg.Add(1)
			go func() {
				defer wg.Done()
				actx, acancel := context.WithTimeout(context.Background(), time.Duration(50+hint(500))*time.Millisecond)
				defer acancel()
				rm, err := s.AddHook(actx, h)
				if err == nil && rm != nil {
					rmu.Lock()
					removes = append(removes, rm)
					rmu.Unlock()
				}
			}()
		case 2:
			if fc := newestFakeConn(b); fc != nil && rng.Intn(3) == 0 {
				fc.kill()
			}
		case 3:
			if fc := newestFakeConn(b); fc != nil {
				burst(fc, 1+rng.Intn(7), rng.Intn)
			}
		case 4:
			rmu.Lock()
			if len(removes) > 0 {
				k := rng.Intn(len(removes))
				rm := removes[k]
				removes = append(removes[:k], removes[k+1:]...)
				rmu.Unlock()
				rm()
			} else {
				rmu.Unlock()
			}
		case 5:
			time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
		}
	}
	if closeAt < 0 && blockedTimeout == 0 && !closeInside.Load() {
		// Quiescent: one last burst on a Ready connection, and Blocked()
		// must end equal to its last word.
		wg.Wait()
		if err := s.WaitReady(ctx); err == nil {
			time.Sleep(50 * time.Millisecond)
			if fc := newestFakeConn(b); fc != nil && s.State() == Ready {
				burst(fc, 1+rng.Intn(7), rng.Intn)
				lastWordMu.Lock()
				want := lastWord
				lastWordMu.Unlock()
				if !attack6WaitBlocked(t, s, want, 3*time.Second) && s.State() == Ready && newestFakeConn(b) == fc {
					t.Errorf("flag: Blocked()=%v, the broker's last word was blocked=%v", s.Blocked(), want)
				}
			}
		}
	}
	cctx, ccancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer ccancel()
	cerr := s.Close(cctx)
	closed = true
	_ = cerr
	wg.Wait()
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("Done never closed")
	}
	if s.Blocked() {
		t.Error("flag: Blocked() true after Close")
	}
	tr.mu.Lock()
	for _, e := range tr.errs {
		t.Error(e)
	}
	for name, n := range tr.owed {
		if n != 0 {
			t.Errorf("pair: %s has %d Ups without a Down after Close", name, n)
		}
	}
	tr.mu.Unlock()
	st := s.Stats()
	t.Logf("timeout=%v closeAt=%d inside=%v connections=%d blocked=%d timeouts=%d events=%d",
		blockedTimeout, closeAt, closeInside.Load(), st.Connections, st.BlockedTimes, st.BlockedTimeouts, len(evs))
	emu.Lock()
	if checkBlockedEvents(t, evs) {
		t.Errorf("events: tracker blocked after Close")
	}
	emu.Unlock()
	b.stop()
	goleak.VerifyNone(t, leakOpt)
}

// attack6BlockedBurstNoFail is attack6BlockedBurst for any goroutine.
func attack6BlockedBurstNoFail(fc *pubFakeConn, seq ...bool) {
	_ = attack6WriteBlockedBurst(fc, seq...)
}

// checkBlockedEvents checks, as an event-driven tracker sees them, that
// Blocked and Unblocked alternate, that a Blocked comes only while
// connected, and that no Connected finds the tracker still blocked; it
// reports whether the events end blocked.
func checkBlockedEvents(t *testing.T, evs []Event) (blocked bool) {
	t.Helper()
	connected := false
	var seq []string // the last 30 kinds, for the failure message
	for i, e := range evs {
		switch e.Kind {
		case EventConnected:
			if blocked {
				t.Errorf("event %d: Connected while the tracker is still blocked: %v", i, seq)
			}
			connected = true
		case EventConnectionLost:
			connected = false
		case EventBlocked:
			if !connected || blocked {
				t.Errorf("event %d: Blocked with connected=%v blocked=%v: %v", i, connected, blocked, seq)
			}
			blocked = true
		case EventUnblocked:
			if !blocked {
				t.Errorf("event %d: Unblocked while not blocked: %v", i, seq)
			}
			blocked = false
		default:
			continue
		}
		seq = append(seq, e.Kind.String())
		if len(seq) > 30 {
			seq = seq[1:]
		}
	}
	return blocked
}
