package conn

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func direct(h func(Event), e Event) { h(e) }

func TestDispatcherDeliversInOrder(t *testing.T) {
	var got []int
	var mu sync.Mutex
	d := newDispatcher(16, func(e Event) {
		mu.Lock()
		got = append(got, e.Attempt)
		mu.Unlock()
	}, direct, func(uint64) {})
	for i := 0; i < 10; i++ {
		d.emit(Event{Attempt: i})
	}
	d.close()
	<-d.done
	for i, v := range got {
		if v != i {
			t.Fatalf("delivery %d carried %d: out of order (%v)", i, v, got)
		}
	}
	if len(got) != 10 {
		t.Fatalf("delivered %d events, want 10", len(got))
	}
}

func TestDispatcherDropsOldestAndCounts(t *testing.T) {
	release := make(chan struct{})
	var got []Event
	d := newDispatcher(4, func(e Event) {
		if e.Attempt == 0 {
			<-release // hold the dispatcher while the ring overflows
		}
		got = append(got, e)
	}, direct, func(uint64) {})
	d.emit(Event{Attempt: 0})
	waitFor(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.n == 0 })
	for i := 1; i <= 10; i++ { // 10 into a ring of 4: 6 dropped, 7..10 kept
		d.emit(Event{Attempt: i})
	}
	close(release)
	d.close()
	<-d.done
	if len(got) != 5 {
		t.Fatalf("delivered %d events, want 5", len(got))
	}
	if got[1].Attempt != 7 || got[1].Dropped != 6 {
		t.Errorf("first event after overflow = attempt %d dropped %d, want attempt 7 dropped 6", got[1].Attempt, got[1].Dropped)
	}
	for _, e := range got[2:] {
		if e.Dropped != 0 {
			t.Errorf("event %d reports %d drops already reported", e.Attempt, e.Dropped)
		}
	}
	if d.dropped.Load() != 6 {
		t.Errorf("dropped total = %d, want 6", d.dropped.Load())
	}
}

func TestDispatcherHandlerMayEmit(t *testing.T) {
	var d *dispatcher
	count := 0
	d = newDispatcher(2, func(e Event) {
		count++
		if e.Attempt < 1000 {
			d.emit(Event{Attempt: e.Attempt + 1}) // re-entrant emit onto the queue being drained
		}
	}, direct, func(uint64) {})
	d.emit(Event{Attempt: 0})
	waitFor(t, func() bool { return d.delivered.Load() == 1001 })
	d.close()
	<-d.done
}

// TestDispatcherFlood emits 1,000,000 events at a handler that sleeps 1 ms per
// event: emitting must never block, the heap must stay flat, and every event
// must be either delivered or counted as dropped.
func TestDispatcherFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const total = 1_000_000
	d := newDispatcher(DefaultEventBuffer, func(Event) { time.Sleep(time.Millisecond) }, direct, func(uint64) {})
	var sumDropped uint64
	var mu sync.Mutex
	d.call = func(h func(Event), e Event) {
		mu.Lock()
		sumDropped += e.Dropped
		mu.Unlock()
		h(e)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	var slowest time.Duration
	for i := 0; i < total; i++ {
		t0 := time.Now()
		d.emit(Event{Attempt: i, Err: errFlood})
		if el := time.Since(t0); el > slowest {
			slowest = el
		}
	}
	emitTook := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	d.close()
	<-d.done

	delivered, dropped := d.delivered.Load(), d.dropped.Load()
	mu.Lock()
	reported := sumDropped
	mu.Unlock()
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("flood: %d events emitted in %v (%.0f ns/emit, slowest %v); delivered %d, dropped %d, reported in Dropped %d; heap %+d KiB",
		total, emitTook, float64(emitTook.Nanoseconds())/total, slowest, delivered, dropped, reported, growth/1024)
	if delivered+dropped != total {
		t.Errorf("delivered %d + dropped %d != emitted %d", delivered, dropped, total)
	}
	if reported != dropped {
		t.Errorf("events reported %d drops, counter says %d", reported, dropped)
	}
	// The ring holds 256 events; anything near the size of a million events
	// (tens of MiB) means the buffer is not bounded.
	if growth > 4<<20 {
		t.Errorf("heap grew by %d KiB during the flood; the buffer is not bounded", growth/1024)
	}
	// 1,000,000 events at 1 ms each would take 1000 s if emit waited for the handler.
	if emitTook > 60*time.Second {
		t.Errorf("emitting took %v: emit blocks on the handler", emitTook)
	}
}

var errFlood = errorString("flood")

type errorString string

func (e errorString) Error() string { return string(e) }

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(defaultTestTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatal("condition not met in time")
		case <-tick.C:
		}
	}
}
