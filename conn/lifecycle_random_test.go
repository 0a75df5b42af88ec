package conn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

var (
	lifecycleSeed = flag.Int64("lifecycle.seed", 0, "replay one seed of TestLifecycleRandomized")
	lifecycleRuns = flag.Int("lifecycle.runs", 150, "seeds TestLifecycleRandomized runs")
)

// lifecycleCounts tallies what the randomized lifecycle test exercised.
type lifecycleCounts struct {
	adds, addFailed, addWithdrawn, removes, kills, blocks, unblocks, ups, downs, upFailures int
}

// TestLifecycleRandomized drives a supervisor on the fake broker through
// random interleavings of AddHook (with Ups that succeed, fail or are slow),
// hook removal, connection kills, connection.blocked/unblocked, and a Close at
// a random point, and checks on every run: Ups and Downs never overlap; every
// Up that succeeded is followed by exactly one Down for that connection, and
// no Up comes before the Down owed for the previous one; Blocked() is true
// only on a connection the broker blocked; Close returns within its bound;
// no goroutine is left. A failure names its seed; -lifecycle.seed replays it.
func TestLifecycleRandomized(t *testing.T) {
	seeds := testSeeds(*lifecycleSeed, *lifecycleRuns)
	var total lifecycleCounts
	for _, seed := range seeds {
		c := runLifecycle(t, seed)
		total.adds += c.adds
		total.addFailed += c.addFailed
		total.addWithdrawn += c.addWithdrawn
		total.removes += c.removes
		total.kills += c.kills
		total.blocks += c.blocks
		total.unblocks += c.unblocks
		total.ups += c.ups
		total.downs += c.downs
		total.upFailures += c.upFailures
		if t.Failed() {
			return
		}
	}
	t.Logf("%d runs: %d AddHook (%d failed, %d withdrawn), %d removals, %d kills, %d blocked, %d unblocked, "+
		"%d successful Ups, %d Downs, %d failed Ups", len(seeds), total.adds, total.addFailed, total.addWithdrawn,
		total.removes, total.kills, total.blocks, total.unblocks, total.ups, total.downs, total.upFailures)
}

// lifecycleHook is one hook's record: what it saw, checked as it happens.
type lifecycleHook struct {
	name    string
	up      *amqp.Connection // the connection whose Down is owed, or nil
	ups     int
	downs   int
	failPct int
}

func runLifecycle(t *testing.T, seed int64) lifecycleCounts {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("seed %d (replay: go test -run TestLifecycleRandomized ./conn -args -lifecycle.seed=%d): %s", seed, seed,
			fmt.Sprintf(format, args...))
	}
	goroutines := runtime.NumGoroutine()
	b := startPubFakeBroker(t)
	s, err := New(Options{
		URLs:      []string{b.url()},
		Reconnect: reconnect.Policy{Initial: 2 * time.Millisecond, Max: 20 * time.Millisecond, ResetAfter: time.Millisecond},
		Logger:    discardLogger(),
		OnEvent:   func(Event) {},
	})
	if err != nil {
		t.Fatal(err)
	}

	var (
		counts  lifecycleCounts
		mu      sync.Mutex // guards hooks' records and counts.ups/downs/upFailures
		inside  atomic.Int32
		records []*lifecycleHook
		removes []func()
		blocked = map[string]bool{} // client address of a connection the fake blocked
	)
	enter := func(what string) {
		if n := inside.Add(1); n != 1 {
			fail("%s overlaps another Up or Down (%d at once)", what, n)
		}
	}
	addHook := func(ctx context.Context) {
		rec := &lifecycleHook{name: fmt.Sprintf("h%d", len(records)), failPct: rng.Intn(5) * 10}
		slow := time.Duration(rng.Intn(3)) * time.Millisecond
		upRng := rand.New(rand.NewSource(rng.Int63()))
		h := Hook{
			Name: rec.name,
			Up: func(_ context.Context, c *amqp.Connection) error {
				enter("Up " + rec.name)
				defer inside.Add(-1)
				time.Sleep(slow)
				mu.Lock()
				defer mu.Unlock()
				if rec.up != nil {
					fail("%s: Up before the Down owed for its previous Up", rec.name)
				}
				if upRng.Intn(100) < rec.failPct {
					counts.upFailures++
					return errors.New("refused")
				}
				rec.up = c
				rec.ups++
				counts.ups++
				return nil
			},
			Down: func(error) {
				enter("Down " + rec.name)
				defer inside.Add(-1)
				mu.Lock()
				defer mu.Unlock()
				if rec.up == nil {
					fail("%s: Down without an Up owing it", rec.name)
				}
				rec.up = nil
				rec.downs++
				counts.downs++
			},
		}
		counts.adds++
		remove, err := s.AddHook(ctx, h)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
			counts.addWithdrawn++
		case err != nil:
			counts.addFailed++
		}
		mu.Lock()
		records = append(records, rec)
		mu.Unlock()
		if err == nil {
			removes = append(removes, remove)
		}
	}
	checkBlocked := func() {
		live := s.live.Load()
		if s.Blocked() && (live == nil || !blocked[live.conn.LocalAddr().String()]) {
			fail("Blocked() = true on a connection the broker never blocked")
		}
	}

	steps := 10 + rng.Intn(30)
	closeAt := rng.Intn(steps + 1)
	for step := 0; step < steps && step != closeAt; step++ {
		switch op := rng.Intn(10); {
		case op < 4:
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rng.Intn(50))*time.Millisecond)
			addHook(ctx)
			cancel()
		case op < 5 && len(removes) > 0:
			i := rng.Intn(len(removes))
			removes[i]()
			removes = append(removes[:i], removes[i+1:]...)
			counts.removes++
		case op < 7:
			if fc := newestFakeConn(b); fc != nil {
				fc.kill()
				counts.kills++
			}
		case op < 8:
			if fc := newestFakeConn(b); fc != nil && fc.blocked(true) == nil {
				mu.Lock()
				blocked[fc.c.RemoteAddr().String()] = true
				mu.Unlock()
				counts.blocks++
			}
		case op < 9:
			if fc := newestFakeConn(b); fc != nil && fc.blocked(false) == nil {
				counts.unblocks++
			}
		case op < 9 || rng.Intn(2) == 0:
			time.Sleep(time.Duration(rng.Intn(5)) * time.Millisecond)
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_ = s.WaitReady(ctx)
			cancel()
		}
		checkBlocked()
	}

	const closeBound = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), closeBound)
	start := time.Now()
	err = s.Close(ctx)
	took := time.Since(start)
	cancel()
	if err != nil {
		fail("Close = %v", err)
	}
	if took > closeBound+defaultTestTimeout/10 {
		fail("Close took %v, bound %v", took, closeBound)
	}
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		fail("Done not closed after Close returned")
	}
	mu.Lock()
	for _, rec := range records {
		if rec.ups != rec.downs {
			fail("%s: %d successful Ups, %d Downs", rec.name, rec.ups, rec.downs)
		}
	}
	mu.Unlock()
	b.stop()
	// Every goroutine of the supervisor (and of the fake) has exited.
	deadline := time.Now().Add(defaultTestTimeout)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		fail("%d goroutines left after Close, %d before", n, goroutines)
	}
	return counts
}

// newestFakeConn returns the fake broker's newest connection, or nil.
func newestFakeConn(b *pubFakeBroker) *pubFakeConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.conns) == 0 {
		return nil
	}
	return b.conns[len(b.conns)-1]
}
