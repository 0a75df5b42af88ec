package heartbeat

import "sync/atomic"

// SetOnClose sets f to be called once the Monitor's conn is closed: by Close
// (whoever calls it; amqp091-go does when its connection shuts down) or by a
// dead-peer verdict, after Dead() is closed. f runs on the goroutine that
// closed the conn, at most once, and must not block: it is how a caller that
// keeps no goroutine waiting on the connection learns that it ended. Set it
// before Start.
func (m *Monitor) SetOnClose(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onClose = f
}

// SetBeforeRead sets f to be called on the reading goroutine before every
// Read of the wrapped conn, nil to stop. f must be quick and must not block:
// it is for taking what the reader left in a buffered channel since its last
// Read (amqp091-go's connection.blocked notifications), without a goroutine
// of one's own parked on that channel.
func (m *Monitor) SetBeforeRead(f func()) { storeHook(&m.beforeRead, f) }

// SetOnReadDeadline sets f to be called at the start of every
// SetReadDeadline, nil to stop. amqp091-go's heartbeater calls
// SetReadDeadline after each frame its reader dispatched, on the
// heartbeater's goroutine: f sees what the reader left in a buffered
// channel within one Read, before the reader's next Read (SetBeforeRead),
// so a burst larger than the channel need not wait for that Read. f must be
// quick, must not block and must be safe to call concurrently with the
// reader.
func (m *Monitor) SetOnReadDeadline(f func()) { storeHook(&m.onReadDeadline, f) }

// storeHook sets a hook the hot paths call through callHook; nil clears it.
func storeHook(p *atomic.Pointer[func()], f func()) {
	if f == nil {
		p.Store(nil)
		return
	}
	p.Store(&f)
}

// callHook calls the hook in p, if one is set.
func callHook(p *atomic.Pointer[func()]) {
	if f := p.Load(); f != nil {
		(*f)()
	}
}

// Closed reports whether the conn was closed, by Close or by a verdict.
func (m *Monitor) Closed() bool { return m.connClosed.Load() }

// notifyClosed calls the SetOnClose function, once.
func (m *Monitor) notifyClosed() {
	if m.closeNotified.Swap(true) {
		return
	}
	m.mu.Lock()
	f := m.onClose
	m.mu.Unlock()
	if f != nil {
		f()
	}
}
