package conn

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/reconnect"
)

func TestWaitReadyTimeoutNamesTheCause(t *testing.T) {
	url := closedPortURL(t)
	s, err := New(Options{URLs: []string{url}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = s.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady = %v, want it to match DeadlineExceeded", err)
	}
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Cause == nil || nr.Attempt < 1 {
		t.Fatalf("WaitReady = %#v, want a *NotReadyError with the cause and attempt", err)
	}
	// warren: not ready after 300ms (Reconnecting, attempt 3): dial amqp://guest:***@127.0.0.1:1234/: ... connection refused
	want := regexp.MustCompile(`^warren: not ready after \d+ms \((Connecting|Reconnecting), attempt \d+\): dial amqp://guest:\*\*\*@127\.0\.0\.1:\d+/: .*connection refused$`)
	if !want.MatchString(err.Error()) {
		t.Errorf("WaitReady error reads %q, want it to match %v", err, want)
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Errorf("WaitReady error leaks the password: %q", err)
	}
}

func TestPublishableTimeoutNamesTheCause(t *testing.T) {
	s, err := New(Options{URLs: []string{closedPortURL(t)}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = s.waitPublishable(ctx)
	var nr *NotReadyError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &nr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("waitPublishable = %v, want a NotReadyError with the dial error", err)
	}
}

func TestErrorChainsCarryOnePrefix(t *testing.T) {
	// A supervisor stopped by a permanent error: WaitReady after it reads
	// "warren: closed: dial …", not "warren: closed: warren: dial …".
	s, err := New(Options{URLs: []string{"amqps://guest:secretpw@" + serveSelfSignedTLS(t) + "/"}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("a TLS verification failure did not stop the supervisor")
	}
	err = s.WaitReady(context.Background())
	if !errors.Is(err, ErrClosed) || !reconnect.IsPermanent(err) {
		t.Errorf("WaitReady = %v, want ErrClosed with the permanent cause", err)
	}
	if n := strings.Count(err.Error(), "warren: "); n != 1 {
		t.Errorf("WaitReady error %q has %d \"warren: \" prefixes, want 1", err, n)
	}

	p := fastPolicy()
	p.MaxAttempts = 1
	s2, err := New(Options{URLs: []string{closedPortURL(t)}, Reconnect: p, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	<-s2.Done()
	if err := s2.Err(); strings.Count(err.Error(), "warren: ") != 1 || !errors.Is(err, reconnect.ErrGaveUp) {
		t.Errorf("Err() after giving up = %q, want one prefix and ErrGaveUp", err)
	}

	hookErr := chain(errors.New("warren: ready hook failed: topology"), errors.New("warren: declare exchange \"x\": refused"))
	if got, want := hookErr.Error(), `warren: ready hook failed: topology: declare exchange "x": refused`; got != want {
		t.Errorf("chain = %q, want %q", got, want)
	}
}

func TestPublishAfterCloseSaysWhatWasClosed(t *testing.T) {
	b := startPubFakeBroker(t)
	s, p := startPubTest(t, b, PublisherOptions{Name: "orders"})
	if err := p.Close(pubTestCtx(t)); err != nil {
		t.Fatal(err)
	}
	err := p.Publish(pubTestCtx(t), "", "q", pubBody("late"))
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "publisher orders was closed") {
		t.Errorf("Publish after Publisher.Close = %v, want ErrClosed naming the publisher", err)
	}
	p2, err := s.NewPublisher(pubTestCtx(t), PublisherOptions{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	closeNow(t, s)
	err = p2.Publish(pubTestCtx(t), "", "q", pubBody("late"))
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "the supervisor was closed") {
		t.Errorf("Publish after Supervisor.Close = %v, want ErrClosed naming the supervisor", err)
	}
}

// TestSocketDroppedAtLoginOnceIsNotFatal: amqp091-go reports a socket the
// broker closed after start-ok as ErrCredentials, a permanent error; but a
// network reset at that moment looks the same. One such round must not stop
// the supervisor; two in a row do.
func TestSocketDroppedAtLoginOnceIsNotFatal(t *testing.T) {
	b := startPubFakeBroker(t)
	b.mu.Lock()
	b.dropLogins = 1
	b.mu.Unlock()
	s := startFakeSupervisor(t, b, nil)
	if got := s.Stats().FailedDials; got != 1 {
		t.Errorf("FailedDials = %d, want the one dropped login", got)
	}

	b2 := startPubFakeBroker(t)
	b2.mu.Lock()
	b2.dropLogins = 1000
	b2.mu.Unlock()
	s2, err := New(Options{URLs: []string{b2.url()}, Reconnect: fastPolicy(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, s2)
	select {
	case <-s2.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("a login dropped round after round did not stop the supervisor")
	}
	if err := s2.Err(); !reconnect.IsPermanent(err) || s2.Stats().Dials != 2 {
		t.Errorf("Err() = %v after %d dials, want the permanent credentials error after 2", err, s2.Stats().Dials)
	}
}
