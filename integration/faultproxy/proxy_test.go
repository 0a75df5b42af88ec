package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestNewRejectsBadUpstream(t *testing.T) {
	for _, addr := range []string{"", "localhost", "127.0.0.1:1:2"} {
		t.Run(fmt.Sprintf("%q", addr), func(t *testing.T) {
			p, err := New(addr)
			if !errors.Is(err, ErrBadUpstream) {
				if p != nil {
					_ = p.Close()
				}
				t.Fatalf("New(%q) error = %v, want ErrBadUpstream", addr, err)
			}
		})
	}
}

func TestPassThroughConcurrentEcho(t *testing.T) {
	const conns = 32
	up := startUpstream(t, true)
	p := startProxy(t, up.addr())
	if got := p.Mode(); got != PassThrough {
		t.Fatalf("Mode() = %v, want %v", got, PassThrough)
	}

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoStream(p.Addr(), stream{seed: uint64(i), size: 64 << 10})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := p.Accepted(); got != conns {
		t.Errorf("Accepted() = %d, want %d", got, conns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := p.WaitActive(ctx, 0); err != nil {
		t.Errorf("WaitActive(0) = %v with %d active", err, p.ActiveConns())
	}
}

// echoStream sends s through an echoing upstream, half-closes, and checks
// the echo and the echoed close; it runs off the test goroutine.
func echoStream(addr string, s stream) error {
	c, err := net.DialTimeout("tcp", addr, defaultTestTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(defaultTestTimeout))
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, s.reader())
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-sent; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	want, _ := io.ReadAll(s.reader())
	if string(got) != string(want) {
		return fmt.Errorf("seed %d: echo of %d bytes differs (got %d bytes)", s.seed, len(want), len(got))
	}
	return nil
}

func TestBlackholeHoldsBytesInBothDirections(t *testing.T) {
	up := startUpstream(t, false)
	p := startProxy(t, up.addr())
	client := dial(t, p.Addr())
	server := up.accept(t)

	p.Blackhole()
	if got := p.Mode(); got != Blackholed {
		t.Fatalf("Mode() = %v, want %v", got, Blackholed)
	}
	toServer := stream{seed: 1, size: 1 << 20}
	toClient := stream{seed: 2, size: 1 << 20}
	clientSent := sendAsync(client, toServer)
	serverSent := sendAsync(server, toClient)

	expectSilence(t, server)
	expectSilence(t, client)
	// Both writes fit in the proxy's hold buffers, so neither sender blocks.
	waitErr(t, clientSent, "client write")
	waitErr(t, serverSent, "server write")

	p.Heal()
	receive(t, server, toServer)
	receive(t, client, toClient)
	roundTripRaw(t, client, server, "after heal")
}

// roundTripRaw checks that a message flows from a to b and back.
func roundTripRaw(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	for _, dir := range [][2]net.Conn{{a, b}, {b, a}} {
		_ = dir[1].SetReadDeadline(time.Now().Add(defaultTestTimeout))
		if _, err := io.WriteString(dir[0], msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], got); err != nil || string(got) != msg {
			t.Fatalf("read = (%q, %v), want %q", got, err, msg)
		}
	}
}

func TestBlackholeHoldsClose(t *testing.T) {
	tests := []struct {
		name   string
		closer func(client, server *net.TCPConn) (closer, peer *net.TCPConn)
		full   bool
	}{
		{"client half-close", func(c, s *net.TCPConn) (*net.TCPConn, *net.TCPConn) { return c, s }, false},
		{"client close", func(c, s *net.TCPConn) (*net.TCPConn, *net.TCPConn) { return c, s }, true},
		{"upstream half-close", func(c, s *net.TCPConn) (*net.TCPConn, *net.TCPConn) { return s, c }, false},
		{"upstream close", func(c, s *net.TCPConn) (*net.TCPConn, *net.TCPConn) { return s, c }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, false)
			p := startProxy(t, up.addr())
			closer, peer := tt.closer(dial(t, p.Addr()), up.accept(t))

			p.Blackhole()
			if _, err := io.WriteString(closer, "bye"); err != nil {
				t.Fatal(err)
			}
			if tt.full {
				_ = closer.Close()
			} else {
				_ = closer.CloseWrite()
			}
			expectSilence(t, peer)

			p.Heal()
			_ = peer.SetReadDeadline(time.Now().Add(defaultTestTimeout))
			got, err := io.ReadAll(peer)
			if err != nil || string(got) != "bye" {
				t.Fatalf("after heal read (%q, %v), want \"bye\" then EOF", got, err)
			}
		})
	}
}

func TestBlackholeBackpressure(t *testing.T) {
	const maxHeld = 64 << 10
	up := startUpstream(t, false)
	p, err := newProxy(up.addr(), maxHeld)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := dial(t, p.Addr())
	server := up.accept(t)

	p.Blackhole()
	// Larger than every kernel buffer on the path (tcp_wmem max + tcp_rmem
	// max), so the write can only finish if the proxy buffers without bound.
	s := stream{seed: 3, size: 64 << 20}
	sent := sendAsync(client, s)
	select {
	case err := <-sent:
		t.Fatalf("write of %d bytes finished during the blackhole (%v): the proxy did not push back", s.size, err)
	case <-time.After(shortTimeout):
	}
	if held := p.Held(); held > maxHeld {
		t.Fatalf("Held() = %d, want at most %d", held, maxHeld)
	}

	p.Heal()
	receive(t, server, s)
	waitErr(t, sent, "client write")
}

func TestBlackholeDefersUpstreamDial(t *testing.T) {
	up := startUpstream(t, false)
	p := startProxy(t, up.addr())
	p.Blackhole()

	client := dial(t, p.Addr())
	if _, err := io.WriteString(client, "hello"); err != nil {
		t.Fatal(err)
	}
	up.expectNoAccept(t)
	expectSilence(t, client)
	if got := p.Accepted(); got != 1 {
		t.Fatalf("Accepted() = %d, want 1", got)
	}

	p.Heal()
	server := up.accept(t)
	_ = server.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	got := make([]byte, 5)
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "hello" {
		t.Fatalf("upstream read (%q, %v), want \"hello\"", got, err)
	}
}

func TestReset(t *testing.T) {
	tests := []struct {
		name      string
		blackhole bool
		dialFirst bool // connect upstream before the blackhole
	}{
		{"flowing", false, true},
		{"blackholed", true, true},
		{"waiting to dial upstream", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, false)
			p := startProxy(t, up.addr())
			var client, server *net.TCPConn
			if tt.dialFirst {
				client = dial(t, p.Addr())
				server = up.accept(t)
				roundTripRaw(t, client, server, "ping")
			}
			if tt.blackhole {
				p.Blackhole()
			}
			if !tt.dialFirst {
				client = dial(t, p.Addr())
				up.expectNoAccept(t)
			}

			p.Reset()
			expectBroken(t, client)
			if server != nil {
				expectBroken(t, server)
			}
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			if err := p.WaitActive(ctx, 0); err != nil {
				t.Fatalf("WaitActive(0) = %v", err)
			}

			p.Heal()
			client2 := dial(t, p.Addr())
			server2 := up.accept(t)
			roundTripRaw(t, client2, server2, "again")
		})
	}
}

func TestUpstreamDownResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Start the proxy while ln still holds the port, so the proxy cannot
	// pick it, then free it: nothing listens there any more.
	p := startProxy(t, ln.Addr().String())
	_ = ln.Close()
	// The reset can beat the dialer to its own connect result, so a failed
	// dial is as good as a broken connection.
	c, err := net.DialTimeout("tcp", p.Addr(), defaultTestTimeout)
	if err == nil {
		defer c.Close()
		expectBroken(t, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := p.WaitActive(ctx, 0); err != nil {
		t.Fatalf("WaitActive(0) = %v", err)
	}
	if got := p.Accepted(); got != 1 {
		t.Fatalf("Accepted() = %d, want 1", got)
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		name string
		undo func(p *Proxy)
	}{
		{"Refuse(false)", func(p *Proxy) { p.Refuse(false) }},
		{"Heal", func(p *Proxy) { p.Heal() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, true)
			p := startProxy(t, up.addr())
			addr := p.Addr()
			current := dial(t, addr)
			roundTrip(t, current, "before")

			p.Refuse(true)
			p.Refuse(true) // idempotent
			if got := p.Mode(); got != Refusing {
				t.Fatalf("Mode() = %v, want %v", got, Refusing)
			}
			if c, err := net.DialTimeout("tcp", addr, defaultTestTimeout); err == nil {
				_ = c.Close()
				t.Fatal("dial succeeded while refusing")
			}
			roundTrip(t, current, "during")

			tt.undo(p)
			if got := p.Mode(); got != PassThrough {
				t.Fatalf("Mode() = %v, want %v", got, PassThrough)
			}
			if err := p.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if p.Addr() != addr {
				t.Fatalf("Addr() changed from %s to %s", addr, p.Addr())
			}
			roundTrip(t, dial(t, addr), "after")
			roundTrip(t, current, "still")
			if got := p.Accepted(); got != 2 {
				t.Errorf("Accepted() = %d, want 2", got)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	const d = 50 * time.Millisecond
	up := startUpstream(t, true)
	p := startProxy(t, up.addr())
	client := dial(t, p.Addr())
	roundTrip(t, client, "warm-up")

	p.SetLatency(d)
	if got := p.Mode(); got != Delayed {
		t.Fatalf("Mode() = %v, want %v", got, Delayed)
	}
	if got := p.Latency(); got != d {
		t.Fatalf("Latency() = %v, want %v", got, d)
	}
	start := time.Now()
	roundTrip(t, client, "slow")
	if rtt := time.Since(start); rtt < 2*d || rtt > 2*d+defaultTestTimeout {
		t.Fatalf("round trip took %v, want at least %v", rtt, 2*d)
	}

	// Several chunks in flight at once must arrive in order.
	_ = client.SetDeadline(time.Now().Add(defaultTestTimeout))
	var want []byte
	for i := range 20 {
		msg := fmt.Sprintf("<%02d>", i)
		want = append(want, msg...)
		if _, err := io.WriteString(client, msg); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != string(want) {
		t.Fatalf("read (%q, %v), want %q", got, err, want)
	}

	p.Heal()
	if got := p.Latency(); got != 0 {
		t.Fatalf("Latency() after Heal = %v, want 0", got)
	}
}

func TestCloseWhileBlackholed(t *testing.T) {
	up := startUpstream(t, false)
	p, err := New(up.addr())
	if err != nil {
		t.Fatal(err)
	}
	flowing := dial(t, p.Addr())
	server := up.accept(t)
	p.Blackhole()
	pending := dial(t, p.Addr())
	for _, c := range []net.Conn{flowing, server} {
		if _, err := io.WriteString(c, "held"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := p.WaitActive(ctx, 2); err != nil {
		t.Fatalf("WaitActive(2) = %v", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	waitErr(t, closed, "Close")
	if err := p.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if got := p.Mode(); got != Closed {
		t.Fatalf("Mode() = %v, want %v", got, Closed)
	}
	if got := p.ActiveConns(); got != 0 {
		t.Fatalf("ActiveConns() = %d after Close", got)
	}
	expectBroken(t, flowing)
	expectBroken(t, pending)
	expectBroken(t, server)
	if c, err := net.DialTimeout("tcp", p.Addr(), defaultTestTimeout); err == nil {
		_ = c.Close()
		t.Fatal("dial succeeded after Close")
	}
	// Faults after Close must neither panic nor listen again.
	p.Heal()
	p.Refuse(false)
	if got := p.Mode(); got != Closed {
		t.Fatalf("Mode() after Heal = %v, want %v", got, Closed)
	}
}

func TestWaitActiveHonoursContext(t *testing.T) {
	up := startUpstream(t, true)
	p := startProxy(t, up.addr())
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := p.WaitActive(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitActive(1) = %v, want context.DeadlineExceeded", err)
	}
}
