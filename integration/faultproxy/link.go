package faultproxy

import (
	"context"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the dial to the upstream, on top of cancellation by
// Reset and Close.
const dialTimeout = 10 * time.Second

// link is one proxied connection: the accepted client socket, the upstream
// socket it is paired with, and the two pipes between them.
type link struct {
	client   *net.TCPConn
	upstream string
	gate     *gate
	maxHeld  int

	ctx    context.Context // cancelled on teardown, so a pending dial stops
	cancel context.CancelFunc
	done   chan struct{} // closed once, on teardown

	mu       sync.Mutex
	up       *net.TCPConn // nil until the dial succeeds
	pipes    []*pipe
	torndown bool
}

func newLink(client *net.TCPConn, upstream string, g *gate, maxHeld int) *link {
	ctx, cancel := context.WithCancel(context.Background())
	return &link{
		client:   client,
		upstream: upstream,
		gate:     g,
		maxHeld:  maxHeld,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
}

// run serves the link until both directions have finished or it is torn
// down, and returns only once its goroutines have exited.
func (l *link) run() {
	defer l.teardown(false)
	// The upstream is dialled only once traffic may flow: during a partition
	// the SYN would not reach the server either, so it must not see the
	// connection until Heal.
	if !l.awaitFlow() {
		return
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(l.ctx, dialTimeout)
	conn, err := d.DialContext(ctx, "tcp", l.upstream)
	cancel()
	if err != nil {
		l.teardown(true)
		return
	}
	up := conn.(*net.TCPConn)
	abort := func() { l.teardown(true) }
	c2u := newPipe(l.client, up, l.gate, l.done, abort, l.maxHeld)
	u2c := newPipe(up, l.client, l.gate, l.done, abort, l.maxHeld)
	if !l.attach(up, c2u, u2c) {
		return
	}
	var wg sync.WaitGroup
	for _, f := range []func(){c2u.readLoop, c2u.writeLoop, u2c.readLoop, u2c.writeLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}

// awaitFlow waits until the gate is not blackholed; it reports false if the
// link was torn down first.
func (l *link) awaitFlow() bool {
	for {
		st := l.gate.snapshot()
		if !st.blackholed {
			return true
		}
		select {
		case <-st.changed:
		case <-l.done:
			return false
		}
	}
}

// attach records the upstream socket, or closes it if the link was torn
// down while dialling, so teardown always sees every socket to close.
func (l *link) attach(up *net.TCPConn, pipes ...*pipe) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.torndown {
		_ = up.Close()
		return false
	}
	l.up = up
	l.pipes = pipes
	return true
}

// teardown closes both sockets once, with RST when rst is set (SO_LINGER 0
// makes Close send RST instead of FIN). Closing the sockets is also what
// unblocks the pipes' reads and writes.
func (l *link) teardown(rst bool) {
	l.mu.Lock()
	if l.torndown {
		l.mu.Unlock()
		return
	}
	l.torndown = true
	up := l.up
	l.mu.Unlock()

	close(l.done)
	l.cancel()
	for _, c := range []*net.TCPConn{l.client, up} {
		if c == nil {
			continue
		}
		if rst {
			_ = c.SetLinger(0)
		}
		_ = c.Close()
	}
}

// held reports the bytes the link holds in both directions.
func (l *link) held() int {
	l.mu.Lock()
	pipes := l.pipes
	l.mu.Unlock()
	n := 0
	for _, p := range pipes {
		n += p.held()
	}
	return n
}
