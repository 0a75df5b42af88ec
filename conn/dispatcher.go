package conn

import (
	"sync"
	"sync/atomic"
	"time"
)

// dispatcher delivers events to the user's handler, in order, on one
// goroutine, from a bounded ring buffer. emit never blocks: when the ring is
// full the oldest event is dropped and counted. The dispatcher goroutine is the
// only reader of the ring and never writes to it, so a handler that emits (or
// calls Close) cannot deadlock it.
type dispatcher struct {
	handler func(Event)
	// call runs the handler; the supervisor wraps it in the stall watchdog.
	call func(func(Event), Event)
	// onDrop is called, outside the lock, with the running total after a drop.
	onDrop func(total uint64)

	mu      sync.Mutex
	ring    []Event
	head    int    // index of the oldest event
	n       int    // events in the ring
	pending uint64 // drops not yet reported in a delivered event
	closed  bool   // no more events are accepted

	dropped   atomic.Uint64 // all drops since New
	delivered atomic.Uint64

	wake chan struct{} // capacity 1: "the ring has something or closed is set"
	done chan struct{} // closed when the goroutine has exited
}

func newDispatcher(size int, handler func(Event), call func(func(Event), Event), onDrop func(uint64)) *dispatcher {
	d := &dispatcher{
		handler: handler,
		call:    call,
		onDrop:  onDrop,
		ring:    make([]Event, size),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if handler == nil {
		close(d.done)
		return d
	}
	go d.run()
	return d
}

// emit queues e without blocking. After close it does nothing.
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
	if d.n == len(d.ring) {
		d.ring[d.head] = Event{} // release what the dropped event references
		d.head = (d.head + 1) % len(d.ring)
		d.n--
		d.pending++
		dropped = true
	}
	d.ring[(d.head+d.n)%len(d.ring)] = e
	d.n++
	d.mu.Unlock()
	d.signal()
	if dropped {
		d.onDrop(d.dropped.Add(1))
	}
}

func (d *dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default: // a wake-up is already pending; the reader drains everything it finds
	}
}

// next pops the oldest event with the pending drop count attached. ok is false
// when the ring is empty; closed tells whether no more will come.
func (d *dispatcher) next() (e Event, ok, closed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		return Event{}, false, d.closed
	}
	e = d.ring[d.head]
	d.ring[d.head] = Event{}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
	e.Dropped, d.pending = d.pending, 0
	return e, true, d.closed
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		e, ok, closed := d.next()
		if ok {
			d.call(d.handler, e)
			d.delivered.Add(1)
			continue
		}
		if closed {
			return
		}
		<-d.wake
	}
}

// close stops accepting events; the goroutine exits once it has delivered
// what was queued.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.signal()
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
