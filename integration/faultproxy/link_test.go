package faultproxy

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), defaultTestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestLinkTeardown(t *testing.T) {
	tests := []struct {
		name      string
		rst       bool
		wantReset bool
	}{
		{"close", false, false},
		{"reset", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, peer := tcpPair(t)
			l := newLink(client, "127.0.0.1:1", newGate(), MaxHeld)
			l.teardown(tt.rst)
			l.teardown(!tt.rst) // only the first teardown counts
			select {
			case <-l.done:
			default:
				t.Fatal("done not closed by teardown")
			}
			if l.ctx.Err() == nil {
				t.Fatal("dial context not cancelled by teardown")
			}
			_ = peer.SetReadDeadline(time.Now().Add(defaultTestTimeout))
			_, err := peer.Read(make([]byte, 1))
			if got := errors.Is(err, syscall.ECONNRESET); got != tt.wantReset {
				t.Fatalf("peer read error %v: reset = %v, want %v", err, got, tt.wantReset)
			}
		})
	}
}

func TestLinkAttachAfterTeardownClosesUpstream(t *testing.T) {
	client, _ := tcpPair(t)
	up, upPeer := tcpPair(t)
	l := newLink(client, "127.0.0.1:1", newGate(), MaxHeld)
	l.teardown(false)
	if l.attach(up) {
		t.Fatal("attach succeeded on a torn-down link")
	}
	expectBroken(t, upPeer)
}

func TestLinkAwaitFlow(t *testing.T) {
	tests := []struct {
		name    string
		release func(l *link)
		want    bool
	}{
		{"heal", func(l *link) { l.gate.heal() }, true},
		{"teardown", func(l *link) { l.teardown(false) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := tcpPair(t)
			g := newGate()
			g.setBlackholed(true)
			l := newLink(client, "127.0.0.1:1", g, MaxHeld)
			defer l.teardown(false)
			got := make(chan bool, 1)
			go func() { got <- l.awaitFlow() }()
			select {
			case <-got:
				t.Fatal("awaitFlow returned while blackholed")
			case <-time.After(shortTimeout):
			}
			tt.release(l)
			select {
			case ok := <-got:
				if ok != tt.want {
					t.Fatalf("awaitFlow() = %v, want %v", ok, tt.want)
				}
			case <-time.After(defaultTestTimeout):
				t.Fatal("awaitFlow did not return")
			}
		})
	}
}
