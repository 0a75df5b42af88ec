package faultproxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 that forwards every accepted connection
// to one upstream address and injects network faults on demand. All methods
// are safe for concurrent use.
type Proxy struct {
	upstream string
	addr     string
	maxHeld  int
	gate     *gate
	closing  chan struct{} // closed when Close starts
	wg       sync.WaitGroup
	accepted atomic.Int64

	mu        sync.Mutex
	ln        *net.TCPListener // nil while refusing or closed
	listenErr error
	closed    bool
	links     map[*link]struct{}
	// linksChanged is closed and replaced whenever a link is added or
	// removed, so WaitActive needs no polling.
	linksChanged chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// New starts a proxy listening on 127.0.0.1 on a free port that forwards
// each accepted connection to upstream, a host:port address. The upstream is
// dialled per connection, so it need not be up yet.
func New(upstream string) (*Proxy, error) {
	return newProxy(upstream, MaxHeld)
}

func newProxy(upstream string, maxHeld int) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadUpstream, upstream, err)
	}
	p := &Proxy{
		upstream:     upstream,
		maxHeld:      maxHeld,
		gate:         newGate(),
		closing:      make(chan struct{}),
		links:        make(map[*link]struct{}),
		linksChanged: make(chan struct{}),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.listenLocked("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p.addr = p.ln.Addr().String()
	return p, nil
}

// Addr returns the address clients dial, "127.0.0.1:PORT". It stays the same
// for the proxy's lifetime, across Refuse.
func (p *Proxy) Addr() string {
	return p.addr
}

// Upstream returns the address every connection is forwarded to.
func (p *Proxy) Upstream() string {
	return p.upstream
}

// Blackhole partitions the network: from now on bytes and closes are held in
// both directions, not dropped, and both sockets stay open, as in a real
// partition where TCP keeps retransmitting. New connections are still
// accepted but not connected upstream until Heal, so a client's handshake
// hangs. Each direction of each connection holds up to MaxHeld bytes, then
// stops reading, so the sender blocks instead of losing data. A chunk that
// was already being written when Blackhole was called is still delivered.
func (p *Proxy) Blackhole() {
	p.gate.setBlackholed(true)
}

// Heal ends every fault that Heal can undo: held bytes are delivered in
// order, then held closes; latency goes back to zero; and refusing stops.
// Connections already reset stay reset.
func (p *Proxy) Heal() {
	p.gate.heal()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseLocked(false)
}

// Reset aborts every current connection with a TCP RST on both sides,
// including connections held by Blackhole and ones not yet connected
// upstream. New connections are proxied as usual.
func (p *Proxy) Reset() {
	for _, l := range p.snapshotLinks() {
		l.teardown(true)
	}
}

// Refuse makes new connections fail with ECONNREFUSED while on is true: the
// listening socket is closed, and Refuse(false) binds the same port again,
// so Addr stays valid. Current connections are unaffected. If the port
// cannot be bound again, the proxy keeps refusing and Err reports why.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseLocked(on)
}

// SetLatency delays every chunk by d in each direction, measured from when
// the proxy read it, so a round trip takes at least 2*d. Order is preserved,
// and a change applies to bytes already queued. A negative d means zero.
func (p *Proxy) SetLatency(d time.Duration) {
	p.gate.setLatency(d)
}

// Latency returns the one-way delay set by SetLatency.
func (p *Proxy) Latency() time.Duration {
	return p.gate.snapshot().latency
}

// Mode returns the most disruptive fault currently applied.
func (p *Proxy) Mode() Mode {
	st := p.gate.snapshot()
	p.mu.Lock()
	closed, refusing := p.closed, p.ln == nil
	p.mu.Unlock()
	switch {
	case closed:
		return Closed
	case st.blackholed:
		return Blackholed
	case refusing:
		return Refusing
	case st.latency > 0:
		return Delayed
	default:
		return PassThrough
	}
}

// Err returns why the proxy could not listen again after Refuse(false) or
// Heal, wrapping ErrRelisten, or nil.
func (p *Proxy) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listenErr
}

// ActiveConns returns the number of connections currently proxied, counting
// one per client connection, including those waiting for Heal to be
// connected upstream.
func (p *Proxy) ActiveConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Accepted returns the total number of connections accepted since New.
func (p *Proxy) Accepted() int64 {
	return p.accepted.Load()
}

// Held returns the bytes currently buffered across all connections and
// directions, waiting for Heal or for their latency to pass.
func (p *Proxy) Held() int {
	n := 0
	for _, l := range p.snapshotLinks() {
		n += l.held()
	}
	return n
}

// WaitActive blocks until ActiveConns equals n or ctx is done, and returns
// ctx.Err() in the latter case.
func (p *Proxy) WaitActive(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		active, changed := len(p.links), p.linksChanged
		p.mu.Unlock()
		if active == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops listening, closes every connection and waits for all of the
// proxy's goroutines to exit. It is idempotent; every call returns the
// first call's result once shutdown is complete.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		// Mark closed first, under the lock, so no link can be added after
		// the snapshot below and escape teardown.
		p.mu.Lock()
		p.closed = true
		ln := p.ln
		p.ln = nil
		links := p.linksLocked()
		p.mu.Unlock()

		close(p.closing)
		if ln != nil {
			p.closeErr = ln.Close()
		}
		for _, l := range links {
			l.teardown(false)
		}
		p.wg.Wait()
	})
	return p.closeErr
}

// startLink registers and runs a link for an accepted connection, or closes
// the connection if the proxy is closing.
func (p *Proxy) startLink(c *net.TCPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return
	}
	p.accepted.Add(1)
	l := newLink(c, p.upstream, p.gate, p.maxHeld)
	p.links[l] = struct{}{}
	p.broadcastLinksLocked()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		l.run()
		p.removeLink(l)
	}()
}

func (p *Proxy) removeLink(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, l)
	p.broadcastLinksLocked()
}

// broadcastLinksLocked wakes WaitActive callers. Caller must hold p.mu.
func (p *Proxy) broadcastLinksLocked() {
	close(p.linksChanged)
	p.linksChanged = make(chan struct{})
}

func (p *Proxy) snapshotLinks() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.linksLocked()
}

// linksLocked copies the link set, so links can be torn down without
// holding p.mu (teardown takes the link's own lock). Caller must hold p.mu.
func (p *Proxy) linksLocked() []*link {
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}
