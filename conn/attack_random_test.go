package conn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

var (
	attackSeed = flag.Int64("attack.seed", 0, "replay one seed of TestAttackConcurrentLifecycleRandomized")
	attackRuns = flag.Int("attack.runs", 40, "seeds TestAttackConcurrentLifecycleRandomized runs")
)

// TestAttackConcurrentLifecycleRandomized is the existing randomized test
// made concurrent: several goroutines call AddHook (random ctx, random Up
// pace and failures, Ups that ignore ctx), remove hooks (also from inside
// Down), kill connections and block them, and Close comes at a random time.
// Checked, per property, and all reported with the seed:
//
//	overlap:   an Up or Down overlapping another (guarantee 1)
//	order:     an Up before the Down owed for the previous one, or a Down
//	           without an Up (guarantee 2)
//	balance:   successful Ups != Downs after Close (guarantee 2)
//	bound:     AddHook returning more than 1s after its ctx ended (guarantee 1)
//	withdrawn: an Up that ran after AddHook returned an error (h not registered)
//	removed:   an Up that started after the hook's remove func returned
//	close:     Close(ctx 2s) not returning within its bound (guarantee 4)
func TestAttackConcurrentLifecycleRandomized(t *testing.T) {
	seeds := testSeeds(*attackSeed, *attackRuns)
	total := map[string]int{}
	firstSeed := map[string]int64{}
	for _, seed := range seeds {
		for k, v := range runConcurrentLifecycle(t, seed) {
			total[k] += v
			if _, ok := firstSeed[k]; !ok {
				firstSeed[k] = seed
			}
		}
	}
	var kinds []string
	for k := range total {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Errorf("property %q violated %d time(s) over %d runs; first seed %d (replay: go test -race -run TestAttackConcurrentLifecycleRandomized ./conn -args -attack.seed=%d)",
			k, total[k], len(seeds), firstSeed[k], firstSeed[k])
	}
}

type attackHook struct {
	mu          sync.Mutex
	up          *amqp.Connection
	ups, downs  int
	addFailed   bool // AddHook returned an error: not registered
	removed     bool // remove returned
	addReturned bool
}

func runConcurrentLifecycle(t *testing.T, seed int64) map[string]int {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	var vmu sync.Mutex
	violations := map[string]int{}
	violate := func(kind, format string, args ...any) {
		vmu.Lock()
		violations[kind]++
		n := violations[kind]
		vmu.Unlock()
		if n == 1 {
			t.Logf("seed %d: %s: %s", seed, kind, fmt.Sprintf(format, args...))
		}
	}
	b := startPubFakeBroker(t)
	defer b.stop()
	s, err := New(Options{
		URLs:         []string{b.url()},
		Reconnect:    reconnect.Policy{Initial: 2 * time.Millisecond, Max: 20 * time.Millisecond, ResetAfter: time.Millisecond},
		Logger:       discardLogger(),
		OnEvent:      func(Event) {},
		CloseTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var inside atomic.Int32
	enter := func(what string) {
		if n := inside.Add(1); n != 1 {
			violate("overlap", "%s overlaps another Up or Down (%d at once)", what, n)
		}
	}
	var hmu sync.Mutex
	var hooks []*attackHook
	var removes []func()
	add := func(r *rand.Rand) {
		rec := &attackHook{}
		hmu.Lock()
		hooks = append(hooks, rec)
		name := fmt.Sprintf("h%d", len(hooks))
		hmu.Unlock()
		slow := time.Duration(r.Intn(4)) * time.Millisecond
		failPct := r.Intn(4) * 10
		upRng := rand.New(rand.NewSource(r.Int63()))
		var upMu sync.Mutex
		removeInDown := r.Intn(8) == 0
		var selfRemove atomic.Pointer[func()]
		h := Hook{Name: name,
			Up: func(_ context.Context, c *amqp.Connection) error {
				enter("Up " + name)
				defer inside.Add(-1)
				rec.mu.Lock()
				if rec.removed {
					violate("removed", "%s: Up after its remove func returned", name)
				}
				if rec.addFailed {
					violate("withdrawn", "%s: Up after AddHook returned an error", name)
				}
				if rec.up != nil {
					violate("order", "%s: Up before the Down owed", name)
				}
				rec.mu.Unlock()
				time.Sleep(slow)
				upMu.Lock()
				fail := upRng.Intn(100) < failPct
				upMu.Unlock()
				if fail {
					return errors.New("refused")
				}
				rec.mu.Lock()
				rec.up = c
				rec.ups++
				rec.mu.Unlock()
				return nil
			},
			Down: func(error) {
				enter("Down " + name)
				defer inside.Add(-1)
				rec.mu.Lock()
				if rec.up == nil {
					violate("order", "%s: Down without an Up", name)
				}
				rec.up = nil
				rec.downs++
				rec.mu.Unlock()
				if removeInDown {
					if f := selfRemove.Load(); f != nil {
						(*f)()
						rec.mu.Lock()
						rec.removed = true
						rec.mu.Unlock()
					}
				}
			},
		}
		timeout := time.Duration(1+r.Intn(30)) * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		deadline, _ := ctx.Deadline()
		remove, err := s.AddHook(ctx, h)
		if late := time.Since(deadline); late > time.Second {
			violate("bound", "%s: AddHook returned %v after its ctx ended (err %v)", name, late, err)
		}
		rec.mu.Lock()
		rec.addReturned = true
		if err != nil {
			rec.addFailed = true
		}
		rec.mu.Unlock()
		if err == nil {
			selfRemove.Store(&remove)
			hmu.Lock()
			removes = append(removes, func() {
				remove()
				rec.mu.Lock()
				rec.removed = true
				rec.mu.Unlock()
			})
			hmu.Unlock()
		}
	}

	const workers = 3
	steps := 10 + rng.Intn(20)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		r := rand.New(rand.NewSource(rng.Int63()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < steps; i++ {
				switch op := r.Intn(10); {
				case op < 5:
					add(r)
				case op < 6:
					hmu.Lock()
					var f func()
					if len(removes) > 0 {
						j := r.Intn(len(removes))
						f = removes[j]
						removes = append(removes[:j], removes[j+1:]...)
					}
					hmu.Unlock()
					if f != nil {
						f()
					}
				case op < 8:
					if fc := newestFakeConn(b); fc != nil {
						fc.kill()
					}
				case op < 9:
					if fc := newestFakeConn(b); fc != nil {
						_ = fc.blocked(r.Intn(2) == 0)
					}
				default:
					time.Sleep(time.Duration(r.Intn(5)) * time.Millisecond)
				}
			}
		}()
	}
	closeAfter := time.Duration(rng.Intn(60)) * time.Millisecond
	time.Sleep(closeAfter)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	start := time.Now()
	_ = s.Close(ctx)
	if took := time.Since(start); took > 3*time.Second {
		violate("close", "Close took %v", took)
	}
	cancel()
	wg.Wait()
	<-s.Done()
	hmu.Lock()
	for i, rec := range hooks {
		rec.mu.Lock()
		if rec.ups != rec.downs {
			violate("balance", "h%d: %d Ups, %d Downs", i+1, rec.ups, rec.downs)
		}
		rec.mu.Unlock()
	}
	hmu.Unlock()
	return violations
}

// Panicking hooks: an Up that panics while Ready is refused with
// ErrHookPanicked and not registered; a Down that panics still counts as
// made, and the supervisor carries on to the next connection.
func TestAttackPanickingHooks(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	var upPanics atomic.Int32
	_, err := s.AddHook(pubTestCtx(t), Hook{Name: "panics", Up: func(context.Context, *amqp.Connection) error {
		upPanics.Add(1)
		panic("boom")
	}})
	if !errors.Is(err, ErrHookPanicked) {
		t.Errorf("AddHook of a panicking Up: %v", err)
	}
	var ups, downs atomic.Int32
	if _, err := s.AddHook(pubTestCtx(t), Hook{Name: "down panics",
		Up:   func(context.Context, *amqp.Connection) error { ups.Add(1); return nil },
		Down: func(error) { downs.Add(1); panic("down boom") },
	}); err != nil {
		t.Fatal(err)
	}
	latestFakeConn(t, b).kill()
	waitReadyAgain(t, s, 2)
	closeNow(t, s)
	if upPanics.Load() != 1 || ups.Load() != 2 || downs.Load() != 2 {
		t.Errorf("panicking Up ran %d times (want 1); other hook %d Ups, %d Downs (want 2, 2)", upPanics.Load(), ups.Load(), downs.Load())
	}
}

// Guarantee 3 seen through events: "a new connection starts unblocked", so
// an OnEvent consumer tracking the flag resets it on EventConnected. But a
// connection.blocked that arrives while the new connection's hooks run (a
// publisher republishing during a memory alarm, in PhasePublishers) is
// emitted by the blocked drain before serve emits EventConnected: the tracker
// ends up "unblocked" while Blocked() is true for the whole block. The
// same race exists right after Ready (setState(Ready) precedes the
// Connected emit, so a Blocked can slip in between).
func TestAttackBlockedEventBeforeConnected(t *testing.T) {
	b := startPubFakeBroker(t)
	events := newEventLog()
	s := startFakeSupervisor(t, b, events.handle)
	var second atomic.Bool
	if _, err := s.AddHook(pubTestCtx(t), Hook{Name: "publisher resuming", Phase: PhasePublishers,
		Up: func(context.Context, *amqp.Connection) error {
			if !second.Load() {
				return nil
			}
			// The broker blocks the new connection while its hooks run.
			if err := latestFakeConn(t, b).blocked(true); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond) // let the notification arrive
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	second.Store(true)
	latestFakeConn(t, b).kill()
	waitReadyAgain(t, s, 2)
	deadline := time.Now().Add(defaultTestTimeout)
	for !s.Blocked() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !s.Blocked() {
		t.Fatal("the new connection never became blocked")
	}
	tracked := false
	var seq []string
	timeout := time.After(time.Second)
	for done := false; !done; {
		select {
		case e := <-events.ch:
			switch e.Kind {
			case EventConnected, EventUnblocked, EventConnectionLost:
				tracked = false
			case EventBlocked:
				tracked = true
			default:
				continue
			}
			seq = append(seq, e.Kind.String())
		case <-timeout:
			done = true
		}
	}
	if !tracked {
		t.Errorf("events %v leave an event-driven tracker unblocked while Blocked() is true: EventBlocked of the new connection came before its EventConnected", seq)
	}
}
