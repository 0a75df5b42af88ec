package conn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

func fastPolicy() reconnect.Policy {
	return reconnect.Policy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Jitter: 0.5}
}

func TestDialFailuresBackOffAndStayRedacted(t *testing.T) {
	events := newEventLog()
	url := closedPortURL(t)
	s, err := New(Options{URLs: []string{url}, Reconnect: fastPolicy(), OnEvent: events.handle, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s)

	timeout := time.After(defaultTestTimeout)
	var failures []Event
	for len(failures) < 4 {
		select {
		case e := <-events.ch:
			if e.Kind == EventDialFailed {
				failures = append(failures, e)
			}
		case <-timeout:
			t.Fatalf("saw %d DialFailed events, want 4", len(failures))
		}
	}
	maxDelay := time.Duration(float64(40*time.Millisecond) * 1.5)
	for i, e := range failures {
		if e.Attempt != i+1 {
			t.Errorf("failure %d: Attempt = %d, want %d", i, e.Attempt, i+1)
		}
		if e.Delay <= 0 || e.Delay > maxDelay {
			t.Errorf("failure %d: Delay = %v, want in (0, %v]", i, e.Delay, maxDelay)
		}
		if strings.Contains(e.URL, "secretpw") || strings.Contains(e.Err.Error(), "secretpw") {
			t.Errorf("failure %d leaks the password: url %q err %q", i, e.URL, e.Err)
		}
		if !strings.Contains(e.URL, "guest:***@") {
			t.Errorf("failure %d: URL = %q, want it redacted", i, e.URL)
		}
	}
	if st := s.State(); st != Connecting {
		t.Errorf("State() = %v, want Connecting (never connected)", st)
	}
	if got := s.Stats(); got.FailedDials < 4 || got.Dials < got.FailedDials {
		t.Errorf("Stats: dials %d failed %d, want at least 4 failed", got.Dials, got.FailedDials)
	}
}

func TestWaitReadyHonoursContext(t *testing.T) {
	s, err := New(Options{URLs: []string{closedPortURL(t)}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
	defer cancel()
	start := time.Now()
	if err := s.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > shortTestTimeout+time.Second {
		t.Errorf("WaitReady took %v past a %v context", el, shortTestTimeout)
	}
	closeNow(t, s)
	if err := s.WaitReady(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitReady after Close = %v, want ErrClosed", err)
	}
	if _, err := s.AddHook(context.Background(), Hook{Name: "late", Up: nopUp}); !errors.Is(err, ErrClosed) {
		t.Errorf("AddHook after Close = %v, want ErrClosed", err)
	}
	if st := s.State(); st != Closed {
		t.Errorf("State() after Close = %v", st)
	}
}

func TestCloseConcurrentCallsShareResult(t *testing.T) {
	s, err := New(Options{URLs: []string{closedPortURL(t)}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			errs[i] = s.Close(ctx)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close call %d = %v, want nil", i, err)
		}
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed after Close returned")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close after Close = %v", err)
	}
}

func TestCloseFromEventHandler(t *testing.T) {
	var s *Supervisor
	ready := make(chan struct{})
	closed := make(chan error, 1)
	var once sync.Once
	s, err := New(Options{
		URLs:      []string{closedPortURL(t)},
		Reconnect: fastPolicy(),
		Logger:    discardLogger(),
		OnEvent: func(e Event) {
			<-ready
			if e.Kind == EventDialFailed {
				once.Do(func() {
					ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
					defer cancel()
					closed <- s.Close(ctx)
				})
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close from the handler = %v", err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Close from inside the event handler deadlocked")
	}
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("supervisor did not finish after the handler returned")
	}
}

// TestCloseDuringHungHandshake: a peer that accepts TCP but never speaks AMQP
// (a broker stuck in boot, a half-open proxy). Close must not wait out the
// 10 s dial timeout.
func TestCloseDuringHungHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	s, err := New(Options{URLs: []string{"amqp://" + l.Addr().String() + "/"}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var peer net.Conn
	select {
	case peer = <-accepted:
		defer peer.Close()
	case <-time.After(defaultTestTimeout):
		t.Fatal("supervisor never dialed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
	defer cancel()
	start := time.Now()
	err = s.Close(ctx)
	took := time.Since(start)
	t.Logf("Close during a hung handshake took %v", took)
	if err != nil {
		t.Errorf("Close = %v", err)
	}
	if took > shortTestTimeout+50*time.Millisecond {
		t.Errorf("Close took %v, want within its %v context", took, shortTestTimeout)
	}
}

// TestPermanentTLSFailureStopsAfterOneDial serves TLS with a self-signed
// certificate: verification fails, which is permanent, so the supervisor must
// stop after one dial unless RetryPermanent is set.
func TestPermanentTLSFailureStopsAfterOneDial(t *testing.T) {
	addr := serveSelfSignedTLS(t)
	url := "amqps://guest:secretpw@" + addr + "/"
	s, err := New(Options{URLs: []string{url}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("supervisor kept going after a TLS verification failure")
	}
	if st := s.Stats(); st.Dials != 1 || st.State != Closed {
		t.Errorf("after a permanent failure: dials %d state %v, want 1 and Closed", st.Dials, st.State)
	}
	err = s.Err()
	if !reconnect.IsPermanent(err) {
		t.Errorf("Err() = %v, want a permanent error", err)
	}
	if err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("Err() = %v: missing or leaks the password", err)
	}
	if werr := s.WaitReady(context.Background()); !errors.Is(werr, ErrClosed) || !strings.Contains(werr.Error(), "certificate") {
		t.Errorf("WaitReady = %v, want ErrClosed with the TLS cause", werr)
	}
	closeNow(t, s)

	retrying, err := New(Options{URLs: []string{url}, Reconnect: fastPolicy(), RetryPermanent: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return retrying.Stats().Dials >= 3 })
	closeNow(t, retrying)
}

func nopUp(context.Context, *amqp.Connection) error { return nil }

func serveSelfSignedTLS(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Drive the handshake so the client sees the certificate.
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

// TestGivingUpKeepsTheCause: with MaxAttempts the supervisor stops, and its
// error says both that it gave up and why the dials failed.
func TestGivingUpKeepsTheCause(t *testing.T) {
	p := fastPolicy()
	p.MaxAttempts = 2
	s, err := New(Options{URLs: []string{closedPortURL(t)}, Reconnect: p, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("supervisor did not give up after MaxAttempts")
	}
	err = s.Err()
	if !errors.Is(err, reconnect.ErrGaveUp) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Err() = %v, want ErrGaveUp with the dial error", err)
	}
	if reconnect.IsPermanent(err) {
		t.Errorf("Err() = %v is classified permanent; the cause was transient", err)
	}
	closeNow(t, s)
}

// TestStalledEventHandlerIsReported: a handler that blocks past the stall
// threshold is reported with a Stall event naming it and its stack.
func TestStalledEventHandlerIsReported(t *testing.T) {
	release := make(chan struct{})
	stalls := make(chan Event, 4)
	var once sync.Once
	s, err := New(Options{
		URLs:           []string{closedPortURL(t)},
		Reconnect:      fastPolicy(),
		Logger:         discardLogger(),
		StallThreshold: 50 * time.Millisecond,
		OnEvent: func(e Event) {
			if e.Kind == EventStall {
				stalls <- e
				return
			}
			once.Do(func() { blockedInEventHandler(release) })
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s)
	// The stall report is emitted while the handler is stuck, so it is
	// queued behind it: release the handler once the watchdog has counted it.
	waitFor(t, func() bool { return s.Stats().Stalls == 1 })
	close(release)
	select {
	case e := <-stalls:
		if e.Stall == nil || e.Stall.Name != "event handler" || e.Stall.Finished {
			t.Fatalf("first stall event = %+v, want the running report for the event handler", e.Stall)
		}
		if !strings.Contains(string(e.Stall.Stack), "blockedInEventHandler") {
			t.Errorf("stall stack does not name the blocked function:\n%s", e.Stall.Stack)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("no Stall event delivered")
	}
}

func blockedInEventHandler(release chan struct{}) { <-release }

// TestOnePermanentURLDoesNotStopTheRound: a node failing permanently (here a
// TLS verification failure) must not stop a supervisor that has another URL;
// only a round where every URL failed permanently does.
func TestOnePermanentURLDoesNotStopTheRound(t *testing.T) {
	tlsAddr := serveSelfSignedTLS(t)
	s, err := New(Options{
		URLs:      []string{"amqps://guest:secretpw@" + tlsAddr + "/", closedPortURL(t)},
		Reconnect: fastPolicy(),
		Logger:    discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().Dials >= 6 })
	if st := s.State(); st != Connecting {
		t.Errorf("state %v after a mixed round, want Connecting (still retrying)", st)
	}
	closeNow(t, s)

	both, err := New(Options{
		URLs:      []string{"amqps://guest:secretpw@" + tlsAddr + "/", "amqps://guest:secretpw@" + tlsAddr + "/"},
		Reconnect: fastPolicy(),
		Logger:    discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-both.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("supervisor kept going when every URL failed permanently")
	}
	if st := both.Stats(); st.Dials != 2 {
		t.Errorf("%d dials, want 2 (one round)", st.Dials)
	}
	closeNow(t, both)
}
