package heartbeat

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 5 * time.Second
	// shortTimeout is how long tests wait for things that must NOT happen.
	shortTimeout = 300 * time.Millisecond
	// detectionSlack is the margin allowed past the limit before a detection
	// counts as late. The timer math is exact; this covers the scheduler of a
	// shared, noisy machine running the race detector.
	detectionSlack = 100 * time.Millisecond
	// promptBound is how soon a Read blocked on a silent peer must return
	// once the peer is declared dead: far below any TCP timeout, far above
	// scheduler noise.
	promptBound = time.Second
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPair returns both ends of a loopback TCP connection; both are closed when
// the test ends.
func tcpPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	r := <-accepted
	if r.err != nil {
		client.Close()
		tb.Fatalf("accept: %v", r.err)
	}
	tb.Cleanup(func() {
		client.Close()
		r.c.Close()
	})
	return client, r.c
}

// countingConn counts Close calls and can fail them, to observe how a Monitor
// closes the conn it wraps.
type countingConn struct {
	net.Conn
	closes   atomic.Int32
	closeErr error
}

func (c *countingConn) Close() error {
	c.closes.Add(1)
	if err := c.Conn.Close(); err != nil {
		return err
	}
	return c.closeErr
}
