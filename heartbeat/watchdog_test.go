package heartbeat

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// stallThreshold is short so that stall tests run fast; what they check does
// not depend on its value.
const stallThreshold = 50 * time.Millisecond

// recorder collects stall reports.
type recorder struct {
	reports chan Stall
}

func newRecorder() *recorder { return &recorder{reports: make(chan Stall, 16)} }

func (r *recorder) report(s Stall) { r.reports <- s }

func (r *recorder) next(t *testing.T) Stall {
	t.Helper()
	select {
	case s := <-r.reports:
		return s
	case <-time.After(defaultTestTimeout):
		t.Fatalf("no stall report within %v", defaultTestTimeout)
		return Stall{}
	}
}

func (r *recorder) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case s := <-r.reports:
		t.Fatalf("unexpected report %+v", s)
	case <-time.After(wait):
	}
}

// blockedInUserCode stands for a user callback stuck on something that never
// comes; the stall report must name it.
//
//go:noinline
func blockedInUserCode(release <-chan struct{}) {
	<-release
}

// watchers are the two ways to watch a call; every behaviour must hold for both.
var watchers = []struct {
	name string
	// watch is called on the goroutine that runs the callback.
	watch func(w *Watchdog, name string, threshold time.Duration) func()
}{
	{"Watchdog.Watch", func(w *Watchdog, name string, threshold time.Duration) func() {
		return w.Watch(name, threshold)
	}},
	{"Lane.Watch", func(w *Watchdog, name string, threshold time.Duration) func() {
		return w.Lane().Watch(name, threshold)
	}},
}

func TestWatchdogReportsStall(t *testing.T) {
	for _, wr := range watchers {
		wr := wr
		t.Run(wr.name, func(t *testing.T) {
			rec := newRecorder()
			w := NewWatchdog(rec.report)
			release := make(chan struct{})
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				done := wr.watch(w, "consumer orders/q1", stallThreshold)
				blockedInUserCode(release)
				done()
			}()

			first := rec.next(t)
			if first.Finished || first.Name != "consumer orders/q1" || first.Elapsed < stallThreshold {
				t.Errorf("first report = {Name:%q Elapsed:%v Finished:%v}, want the callback's name, Elapsed >= %v, not finished",
					first.Name, first.Elapsed, first.Finished, stallThreshold)
			}
			if !bytes.Contains(first.Stack, []byte("blockedInUserCode")) {
				t.Errorf("first report's stack does not name blockedInUserCode:\n%s", first.Stack)
			}
			if bytes.Contains(first.Stack, []byte("(*watch).fire")) {
				t.Errorf("first report's stack is the watchdog's own:\n%s", first.Stack)
			}

			close(release)
			second := rec.next(t)
			if !second.Finished || second.Name != first.Name || second.Elapsed < first.Elapsed || second.Stack != nil {
				t.Errorf("second report = {Name:%q Elapsed:%v Finished:%v Stack:%d bytes}, want Finished, same name, Elapsed >= %v, no stack",
					second.Name, second.Elapsed, second.Finished, len(second.Stack), first.Elapsed)
			}
			<-finished
			rec.none(t, stallThreshold)
		})
	}
}

func TestWatchdogSilentWhenFast(t *testing.T) {
	for _, wr := range watchers {
		wr := wr
		t.Run(wr.name, func(t *testing.T) {
			rec := newRecorder()
			w := NewWatchdog(rec.report)
			for i := 0; i < 100; i++ {
				done := wr.watch(w, "event handler", shortTimeout/2)
				done()
			}
			rec.none(t, shortTimeout)
		})
	}
}

func TestWatchdogDisabled(t *testing.T) {
	rec := newRecorder()
	tests := []struct {
		name      string
		w         *Watchdog
		threshold time.Duration
	}{
		{"zero threshold", NewWatchdog(rec.report), 0},
		{"negative threshold", NewWatchdog(rec.report), -time.Second},
		{"nil report", NewWatchdog(nil), time.Nanosecond},
		{"nil watchdog", nil, time.Nanosecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := tc.w.Watch("handler", tc.threshold)
			laneDone := tc.w.Lane().Watch("handler", tc.threshold)
			time.Sleep(10 * time.Millisecond)
			done()
			done()
			laneDone()
		})
	}
	rec.none(t, shortTimeout)
}

func TestWatchdogDoneIdempotent(t *testing.T) {
	rec := newRecorder()
	w := NewWatchdog(rec.report)

	// A stale done must not disturb a later call, even one that reuses the
	// recycled state of the first.
	first := w.Watch("first", time.Hour)
	first()
	release := make(chan struct{})
	go func() {
		done := w.Watch("second", stallThreshold)
		first()
		blockedInUserCode(release)
		done()
		done()
		first()
	}()
	if s := rec.next(t); s.Name != "second" || s.Finished {
		t.Fatalf("report = %q finished=%v, want the second call's stall", s.Name, s.Finished)
	}
	close(release)
	if s := rec.next(t); s.Name != "second" || !s.Finished {
		t.Fatalf("report = %q finished=%v, want the second call's finish", s.Name, s.Finished)
	}
	rec.none(t, shortTimeout)
}

func TestWatchdogDoneDuringFirstReport(t *testing.T) {
	entered := make(chan struct{})
	unblock := make(chan struct{})
	var mu sync.Mutex
	var order []bool
	reports := make(chan struct{}, 2)
	w := NewWatchdog(func(s Stall) {
		if !s.Finished {
			close(entered)
			<-unblock
		}
		mu.Lock()
		order = append(order, s.Finished)
		mu.Unlock()
		reports <- struct{}{}
	})

	done := w.Watch("slow", time.Millisecond)
	<-entered
	// done must neither block on the report in progress nor overtake it.
	returned := make(chan struct{})
	go func() {
		done()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(defaultTestTimeout):
		t.Fatalf("done blocked on a report in progress")
	}
	close(unblock)
	for i := 0; i < 2; i++ {
		select {
		case <-reports:
		case <-time.After(defaultTestTimeout):
			t.Fatalf("got %d reports, want 2", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] || !order[1] {
		t.Fatalf("report order (Finished flags) = %v, want [false true]", order)
	}
}

func TestWatchdogConcurrent(t *testing.T) {
	var mu sync.Mutex
	stalls, finishes := 0, 0
	w := NewWatchdog(func(s Stall) {
		mu.Lock()
		defer mu.Unlock()
		if s.Finished {
			finishes++
		} else {
			stalls++
		}
	})
	const goroutines, calls = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			lane := w.Lane()
			for i := 0; i < calls; i++ {
				var done func()
				// Thresholds around the callback's own duration make stalls,
				// near misses and fast calls interleave.
				threshold := time.Duration(i%5) * 50 * time.Microsecond
				if g%2 == 0 {
					done = w.Watch("handler", threshold)
				} else {
					done = lane.Watch("handler", threshold)
				}
				if i%7 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
				done()
				if i%3 == 0 {
					done()
				}
			}
		}(g)
	}
	wg.Wait()
	// Finished reports of stalls whose done came during the first report are
	// made by the timer goroutine; give them a moment.
	deadline := time.Now().Add(defaultTestTimeout)
	for {
		mu.Lock()
		s, f := stalls, finishes
		mu.Unlock()
		if s == f {
			t.Logf("%d calls, %d stalls, each with one Finished report", goroutines*calls, s)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d stall reports but %d Finished reports", s, f)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLaneCurrentOnlyOnItsGoroutine(t *testing.T) {
	w := NewWatchdog(func(Stall) {})
	lane := w.Lane()
	if !lane.Current() {
		t.Fatal("Current() = false on the Lane's own goroutine")
	}
	other := make(chan bool)
	go func() { other <- lane.Current() }()
	if <-other {
		t.Fatal("Current() = true on another goroutine")
	}
	var nilLane *Lane
	if nilLane.Current() {
		t.Fatal("Current() = true on a nil Lane")
	}
}

// TestStallDumpShared: reports that wait for a dump in progress, begun after
// their callbacks started, share it instead of stopping the world again; a
// report whose callback started after that dump began takes its own.
func TestStallDumpShared(t *testing.T) {
	before := time.Now()
	shared := []byte("goroutine 1 [running]:\nshared dump\n")
	c := &dumpCall{began: time.Now(), done: make(chan struct{})}
	stallDumps.mu.Lock()
	stallDumps.cur = c
	stallDumps.mu.Unlock()

	const waiters = 8
	got := make(chan []byte, waiters)
	for i := 0; i < waiters; i++ {
		go func() { got <- sharedDump(before) }()
	}
	late := make(chan []byte, 1)
	go func() { late <- sharedDump(time.Now().Add(time.Hour)) }() // started after c began

	deadline := time.Now().Add(defaultTestTimeout)
	for c.waiters.Load() < waiters+1 { // let them all find c in progress
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d reports found the dump in progress", c.waiters.Load(), waiters+1)
		}
		time.Sleep(time.Millisecond)
	}
	c.dump = shared
	stallDumps.mu.Lock()
	stallDumps.cur = nil
	stallDumps.mu.Unlock()
	close(c.done)

	for i := 0; i < waiters; i++ {
		select {
		case d := <-got:
			if !bytes.Equal(d, shared) {
				t.Fatalf("waiter %d got a dump of its own (%d bytes), want the shared one", i, len(d))
			}
		case <-time.After(defaultTestTimeout):
			t.Fatal("a waiter never got the shared dump")
		}
	}
	select {
	case d := <-late:
		if bytes.Equal(d, shared) || !bytes.Contains(d, []byte("TestStallDumpShared")) {
			t.Fatalf("a report whose callback began after the dump got %q, want a fresh dump of all goroutines", d)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("the late report never got a dump")
	}
}

// TestStallDumpBounded: the dump behind a stall report never exceeds its
// bound, however many goroutines there are, and a goroutine within the
// bound is still found.
func TestStallDumpBounded(t *testing.T) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait() // after close(release), which is deferred next
	defer close(release)
	ids := make(chan uint64, 1)
	go func() {
		var buf [idBufSize]byte
		ids <- goroutineID(&buf)
		blockedInUserCode(release)
	}()
	id := <-ids
	for i := 0; i < 2000; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); blockedInUserCode(release) }()
	}
	const limit = 96 << 10 // not a power-of-two multiple of the first buffer
	d := dumpAll(limit)
	if len(d) > limit {
		t.Fatalf("dump of %d bytes, over its bound of %d", len(d), limit)
	}
	if len(d) < limit/2 {
		t.Fatalf("dump of %d bytes with 2000 goroutines: the bound cut it far too early", len(d))
	}
	// Goroutines are listed in no promised order (freed ones are reused),
	// so the check is that a goroutine the bounded dump lists is found.
	if findGoroutineIn(d, id) == nil && !bytes.Contains(d, []byte("blockedInUserCode")) {
		t.Fatalf("no goroutine blocked in user code within the bounded dump")
	}
}
