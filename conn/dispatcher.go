package conn

import (
	"sync"
	"sync/atomic"
	"time"
)

// dispatcherFirstRing is the ring's size when the first event of a burst
// arrives; it doubles, up to the bound, only while the handler lags.
const dispatcherFirstRing = 8

// dispatcher delivers events to the user's handler, in order, on one
// goroutine at a time, from a bounded ring buffer. emit never blocks: when
// the ring holds its bound the oldest event is dropped and counted. The
// delivering goroutine is the only reader of the ring and never writes to
// it, so a handler that emits (or calls Close) cannot deadlock it.
//
// An idle dispatcher costs no goroutine and no ring: emit starts the
// goroutine and allocates a small ring when the first event of a burst
// arrives, the ring grows to the bound only while the handler lags, and both
// are released once everything queued has been delivered. A supervisor
// without a handler never allocates either. Most supervisors emit a handful
// of events per connection, so a fleet of idle supervisors would otherwise
// hold a goroutine and a full ring each.
type dispatcher struct {
	handler func(Event)
	// call runs the handler; the supervisor wraps it in the stall watchdog.
	call func(func(Event), Event)
	// onDrop is called, outside the lock, with the running total after a drop.
	onDrop func(total uint64)
	// onRun, if set, is called first on every delivering goroutine, before
	// any handler call: the supervisor binds its handler Lane there.
	onRun func()

	mu       sync.Mutex
	bound    int
	ring     []Event // nil while idle; grows by doubling up to bound
	head     int     // index of the oldest event
	n        int     // events in the ring
	pending  uint64  // drops not yet reported in a delivered event
	closed   bool    // no more events are accepted
	running  bool    // a delivering goroutine exists
	finished bool    // done is closed

	dropped   atomic.Uint64 // all drops since New
	delivered atomic.Uint64

	done chan struct{} // closed once closed is set and no goroutine runs
}

func newDispatcher(size int, handler func(Event), call func(func(Event), Event), onDrop func(uint64)) *dispatcher {
	d := &dispatcher{
		handler: handler,
		call:    call,
		onDrop:  onDrop,
		bound:   size,
		done:    make(chan struct{}),
	}
	if handler == nil {
		d.closed, d.finished = true, true
		close(d.done)
	}
	return d
}

// emit queues e without blocking, starting the delivering goroutine if none
// runs. After close it does nothing.
func (d *dispatcher) emit(e Event) {
	if d.handler == nil {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	dropped := false
	if d.n == len(d.ring) && !d.growLocked() {
		d.ring[d.head] = Event{} // release what the dropped event references
		d.head = (d.head + 1) % len(d.ring)
		d.n--
		d.pending++
		dropped = true
	}
	d.ring[(d.head+d.n)%len(d.ring)] = e
	d.n++
	start := !d.running
	d.running = true
	d.mu.Unlock()
	if start {
		go d.run()
	}
	if dropped {
		d.onDrop(d.dropped.Add(1))
	}
}

// growLocked doubles the full ring, up to the bound, unwrapping it, and
// reports whether there is room now. Caller must hold d.mu.
func (d *dispatcher) growLocked() bool {
	if len(d.ring) >= d.bound {
		return false
	}
	size := min(max(2*len(d.ring), dispatcherFirstRing), d.bound)
	ring := make([]Event, size)
	for i := 0; i < d.n; i++ {
		ring[i] = d.ring[(d.head+i)%len(d.ring)]
	}
	d.ring, d.head = ring, 0
	return true
}

// next pops the oldest event with the pending drop count attached. When the
// ring is empty it releases the ring and ends the goroutine's turn (ok false):
// the next emit starts another. The goroutine that ends the last turn after
// close closes done.
func (d *dispatcher) next() (e Event, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		d.ring, d.head, d.running = nil, 0, false
		if d.closed && !d.finished {
			d.finished = true
			close(d.done)
		}
		return Event{}, false
	}
	e = d.ring[d.head]
	d.ring[d.head] = Event{}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
	e.Dropped, d.pending = d.pending, 0
	return e, true
}

// run delivers until the ring is empty.
func (d *dispatcher) run() {
	if d.onRun != nil {
		d.onRun()
	}
	for {
		e, ok := d.next()
		if !ok {
			return
		}
		d.call(d.handler, e)
		d.delivered.Add(1)
	}
}

// close stops accepting events; done is closed once what was queued has
// been delivered (at once if nothing is).
func (d *dispatcher) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if !d.running && !d.finished {
		d.finished = true
		close(d.done)
	}
}

// dropWarner logs at most one warning per interval about dropped events.
type dropWarner struct {
	interval time.Duration
	last     atomic.Int64 // unix nanoseconds of the last warning
}

// due reports whether a warning may be logged now, and claims it.
func (w *dropWarner) due(now time.Time) bool {
	last := w.last.Load()
	if last != 0 && now.UnixNano()-last < int64(w.interval) {
		return false
	}
	return w.last.CompareAndSwap(last, now.UnixNano())
}
