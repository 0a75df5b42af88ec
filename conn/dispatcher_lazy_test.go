package conn

import (
	"math/rand"
	"runtime"
	"sync"
	"testing"
	"time"
)

// dispatcherState is what a test may look at under the dispatcher's lock.
func dispatcherState(d *dispatcher) (ringLen int, running bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ring), d.running
}

// TestDispatcherIdleHoldsNothing: a dispatcher holds no ring and no
// goroutine before its first event and again once it has delivered
// everything; without a handler it never does.
func TestDispatcherIdleHoldsNothing(t *testing.T) {
	delivered := make(chan int, 16)
	d := newDispatcher(DefaultEventBuffer, func(e Event) { delivered <- e.Attempt }, direct, func(uint64) {})
	if n, running := dispatcherState(d); n != 0 || running {
		t.Fatalf("before any event: ring %d slots, running %v; want none", n, running)
	}
	for i := 0; i < 3; i++ {
		d.emit(Event{Attempt: i})
	}
	for i := 0; i < 3; i++ {
		if got := <-delivered; got != i {
			t.Fatalf("delivery %d carried %d", i, got)
		}
	}
	waitFor(t, func() bool { n, running := dispatcherState(d); return n == 0 && !running })
	d.close()
	select {
	case <-d.done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("done not closed after close of an idle dispatcher")
	}

	none := newDispatcher(DefaultEventBuffer, nil, direct, func(uint64) {})
	none.emit(Event{})
	if n, running := dispatcherState(none); n != 0 || running {
		t.Errorf("without a handler: ring %d slots, running %v; want none", n, running)
	}
}

// TestDispatcherRandomBursts checks, for seeded random bursts from several
// emitters at a handler that is sometimes slow, the dispatcher's promises:
// per emitter, events arrive in order; every event is delivered or counted
// as dropped, and the drops are reported in Dropped; the ring never exceeds
// its bound; between bursts no goroutine or ring remains.
func TestDispatcherRandomBursts(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	const emitters = 3
	bound := 1 + rng.Intn(40)
	var mu sync.Mutex
	last := [emitters]int{-1, -1, -1}
	var reported uint64
	var failures []string
	slow := rng.Intn(4) == 0
	d := newDispatcher(bound, func(e Event) {
		mu.Lock()
		reported += e.Dropped
		em, seq := e.Attempt/1_000_000, e.Attempt%1_000_000
		if seq <= last[em] {
			failures = append(failures, "out of order")
		}
		last[em] = seq
		mu.Unlock()
		if slow {
			runtime.Gosched()
		}
	}, direct, func(uint64) {})
	emitted := 0
	for burst := 0; burst < 20; burst++ {
		var wg sync.WaitGroup
		per := rng.Intn(200)
		for em := 0; em < emitters; em++ {
			wg.Add(1)
			go func(em, base int) {
				defer wg.Done()
				for i := 0; i < per; i++ {
					d.emit(Event{Attempt: em*1_000_000 + base + i})
					if n, _ := dispatcherState(d); n > bound {
						mu.Lock()
						failures = append(failures, "ring over its bound")
						mu.Unlock()
					}
				}
			}(em, burst*1000)
		}
		wg.Wait()
		emitted += emitters * per
		waitFor(t, func() bool { n, running := dispatcherState(d); return n == 0 && !running })
	}
	d.close()
	<-d.done
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("seed %d, bound %d: %d failures, first: %s", seed, bound, len(failures), failures[0])
	}
	delivered, dropped := d.delivered.Load(), d.dropped.Load()
	if int(delivered+dropped) != emitted || reported != dropped {
		t.Fatalf("seed %d, bound %d: emitted %d, delivered %d + dropped %d, reported %d drops",
			seed, bound, emitted, delivered, dropped, reported)
	}
}
