package main

// window bounds the publishes that wait for a broker confirm at once. A
// request that finds it full is refused at once (503) instead of queueing:
// during an outage the number of waiting handlers, and the memory they hold,
// stays at the window's size, however fast requests arrive.
type window struct{ slots chan struct{} }

func newWindow(n int) *window { return &window{slots: make(chan struct{}, n)} }

// tryAcquire takes a slot if one is free; it never waits.
func (w *window) tryAcquire() bool {
	select {
	case w.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// release returns a slot taken by tryAcquire.
func (w *window) release() { <-w.slots }

// full reports whether no slot is free.
func (w *window) full() bool { return len(w.slots) == cap(w.slots) }

// inUse is the number of slots taken; size the number there are.
func (w *window) inUse() int { return len(w.slots) }
func (w *window) size() int  { return cap(w.slots) }
