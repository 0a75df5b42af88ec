package faultproxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	// defaultTestTimeout bounds anything that must happen.
	defaultTestTimeout = 10 * time.Second
	// shortTimeout is how long tests watch for something that must NOT
	// happen (bytes leaking through a blackhole, a write completing past
	// the hold limit).
	shortTimeout = 150 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// upstream is a TCP server standing in for RabbitMQ. In echo mode it echoes
// every connection; otherwise it hands each accepted connection to the test.
type upstream struct {
	ln    net.Listener
	echo  bool
	conns chan *net.TCPConn
	wg    sync.WaitGroup

	mu   sync.Mutex
	open []net.Conn
}

func startUpstream(t *testing.T, echo bool) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, echo: echo, conns: make(chan *net.TCPConn, 128)}
	u.wg.Add(1)
	go u.serve()
	t.Cleanup(u.close)
	return u
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) serve() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.open = append(u.open, c)
		u.mu.Unlock()
		if !u.echo {
			u.conns <- c.(*net.TCPConn)
			continue
		}
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			_, _ = io.Copy(c, c)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
	}
}

func (u *upstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	for _, c := range u.open {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// accept returns the next upstream-side connection.
func (u *upstream) accept(t *testing.T) *net.TCPConn {
	t.Helper()
	select {
	case c := <-u.conns:
		return c
	case <-time.After(defaultTestTimeout):
		t.Fatal("upstream accepted no connection")
		return nil
	}
}

// expectNoAccept fails if the upstream accepts a connection within
// shortTimeout.
func (u *upstream) expectNoAccept(t *testing.T) {
	t.Helper()
	select {
	case <-u.conns:
		t.Fatal("upstream accepted a connection it should not have seen")
	case <-time.After(shortTimeout):
	}
}

func startProxy(t *testing.T, up string) *Proxy {
	t.Helper()
	p, err := New(up)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, defaultTestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and expects it echoed back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(defaultTestTimeout))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// expectSilence fails unless a read on c times out with no data: the socket
// is open but nothing arrives.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(shortTimeout))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = (%d, %v), want a timeout with no data", n, err)
	}
}

// expectBroken fails unless a read on c fails (EOF or reset) promptly,
// reading past at most a few stray bytes.
func expectBroken(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open, want EOF or reset")
	}
}

// stream is a deterministic pseudo-random byte stream of a given size whose
// checksum both ends can compute.
type stream struct {
	seed uint64
	size int64
}

func (s stream) reader() io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedOf(s.seed)), s.size)
}

func (s stream) sum() [sha256.Size]byte {
	h := sha256.New()
	_, _ = io.Copy(h, s.reader())
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

func seedOf(n uint64) [32]byte {
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(n >> (8 * i))
	}
	return seed
}

// sendAsync writes s to c in the background and reports the result.
func sendAsync(c net.Conn, s stream) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, s.reader())
		done <- err
	}()
	return done
}

// receive reads exactly s.size bytes from c and checks they match s.
func receive(t *testing.T, c net.Conn, s stream) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(c, s.size))
	if err != nil || n != s.size {
		t.Fatalf("received %d of %d bytes: %v", n, s.size, err)
	}
	want := s.sum()
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("received bytes differ from the bytes sent")
	}
}

func waitErr(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatalf("%s did not finish", what)
	}
}
