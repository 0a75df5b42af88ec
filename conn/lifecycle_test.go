package conn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// hookRecorder records what a hook saw, as "up N" and "down N" with N
// numbering the connections it saw, so a sequence can be compared whole.
type hookRecorder struct {
	mu    sync.Mutex
	conns map[*amqp.Connection]int
	log   []string
}

func newHookRecorder() *hookRecorder { return &hookRecorder{conns: map[*amqp.Connection]int{}} }

func (r *hookRecorder) connID(c *amqp.Connection) int {
	if id, ok := r.conns[c]; ok {
		return id
	}
	r.conns[c] = len(r.conns) + 1
	return r.conns[c]
}

func (r *hookRecorder) hook(name string) Hook {
	var last *amqp.Connection
	return Hook{
		Name: name,
		Up: func(_ context.Context, c *amqp.Connection) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			last = c
			r.log = append(r.log, fmt.Sprintf("up %d", r.connID(c)))
			return nil
		},
		Down: func(err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			what := "down"
			if errors.Is(err, ErrClosed) {
				what = "down-closed"
			}
			r.log = append(r.log, fmt.Sprintf("%s %d", what, r.connID(last)))
		},
	}
}

func (r *hookRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.log)
}

// latestFakeConn returns the fake broker's newest connection, failing the
// test if it has none.
func latestFakeConn(t testing.TB, b *pubFakeBroker) *pubFakeConn {
	t.Helper()
	fc := newestFakeConn(b)
	if fc == nil {
		t.Fatal("the fake broker has no connection")
	}
	return fc
}

// startFakeSupervisor starts a supervisor on the fake broker and waits for
// Ready; it is closed at cleanup.
func startFakeSupervisor(t *testing.T, b *pubFakeBroker, onEvent func(Event)) *Supervisor {
	t.Helper()
	return startFakeSupervisorWith(t, b, Options{OnEvent: onEvent})
}

// startFakeSupervisorWith is startFakeSupervisor with opts; the fake
// broker's URL, fastPolicy and a discarding logger fill in URLs, Reconnect
// and Logger.
func startFakeSupervisorWith(t *testing.T, b *pubFakeBroker, opts Options) *Supervisor {
	t.Helper()
	opts.URLs = []string{b.url()}
	if opts.Reconnect == (reconnect.Policy{}) {
		opts.Reconnect = fastPolicy()
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNow(t, s) })
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return s
}

// waitReadyAgain waits until s has been through a loss and is Ready again.
func waitReadyAgain(t *testing.T, s *Supervisor, connections uint64) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for s.Stats().Connections < connections || s.State() != Ready {
		if time.Now().After(deadline) {
			t.Fatalf("not Ready on connection %d: state %v, %d connections", connections, s.State(), s.Stats().Connections)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		s.WaitForStateChange(ctx, s.State())
		cancel()
	}
}

func TestHookAddedWhileReadyIsTakenDown(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	rec := newHookRecorder()
	if _, err := s.AddHook(pubTestCtx(t), rec.hook("late")); err != nil {
		t.Fatal(err)
	}
	latestFakeConn(t, b).kill()
	waitReadyAgain(t, s, 2)
	closeNow(t, s)
	if got, want := rec.String(), "[up 1 down 1 up 2 down-closed 2]"; got != want {
		t.Errorf("hook saw %s, want %s", got, want)
	}
}

func TestRemovedHookStillGetsItsDown(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	rec := newHookRecorder()
	remove, err := s.AddHook(pubTestCtx(t), rec.hook("removed"))
	if err != nil {
		t.Fatal(err)
	}
	remove()
	latestFakeConn(t, b).kill()
	waitReadyAgain(t, s, 2)
	closeNow(t, s)
	if got, want := rec.String(), "[up 1 down 1]"; got != want {
		t.Errorf("hook saw %s, want %s", got, want)
	}
}

func TestAddHookOnADyingConnectionRunsOnTheNext(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	rec := newHookRecorder()
	inner := rec.hook("dying")
	calls := 0
	h := inner
	h.Up = func(ctx context.Context, c *amqp.Connection) error {
		calls++
		if calls == 1 {
			// The connection dies under the first Up.
			latestFakeConn(t, b).kill()
			deadline := time.Now().Add(defaultTestTimeout)
			for !c.IsClosed() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			return amqp.ErrClosed
		}
		return inner.Up(ctx, c)
	}
	if _, err := s.AddHook(pubTestCtx(t), h); err != nil {
		t.Fatalf("AddHook on a connection that died under Up = %v, want nil (it runs on the next)", err)
	}
	waitReadyAgain(t, s, 2)
	closeNow(t, s)
	if got, want := rec.String(), "[up 1 down-closed 1]"; got != want {
		t.Errorf("hook saw %s, want %s (one Up on the second connection)", got, want)
	}
}

func TestAddHookReturnsAPermanentErrorEvenOnADeadConnection(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	refused := reconnect.MarkPermanent(errors.New("bad exchange kind"))
	_, err := s.AddHook(pubTestCtx(t), Hook{Name: "typo", Up: func(_ context.Context, c *amqp.Connection) error {
		latestFakeConn(t, b).kill()
		return refused
	}})
	if !errors.Is(err, ErrHookFailed) || !reconnect.IsPermanent(err) {
		t.Fatalf("AddHook = %v, want the permanent hook error", err)
	}
	waitReadyAgain(t, s, 2) // and it is not run again on the next connection
}

func TestAddHookWithdrawnWhenItsContextEnds(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	release := make(chan struct{})
	// Occupy the supervisor goroutine with a slow Up, so that the next
	// AddHook waits in line.
	go func() {
		_, _ = s.AddHook(context.Background(), Hook{Name: "slow", Up: func(context.Context, *amqp.Connection) error {
			<-release
			return nil
		}})
	}()
	deadline := time.Now().Add(defaultTestTimeout)
	for {
		s.mu.Lock()
		n := len(s.hooks)
		s.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ran := false
	ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
	defer cancel()
	_, err := s.AddHook(ctx, Hook{Name: "late", Up: func(context.Context, *amqp.Connection) error { ran = true; return nil }})
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AddHook = %v, want DeadlineExceeded", err)
	}
	closeNow(t, s)
	if ran {
		t.Error("a withdrawn hook's Up ran")
	}
}

func TestBlockedFlagEndsWithItsConnection(t *testing.T) {
	b := startPubFakeBroker(t)
	// The hook must be registered before the first connection is Ready, or
	// AddHook would run it at once and return its error.
	hold := b.holdHandshakes()
	events := newEventLog()
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(), OnEvent: events.handle})
	if err != nil {
		close(hold)
		t.Fatal(err)
	}
	defer closeNow(t, s)
	attempts := 0
	// The broker blocks the first connection, whose ready hook then fails.
	_, err = s.AddHook(pubTestCtx(t), Hook{Name: "fails once", Up: func(ctx context.Context, c *amqp.Connection) error {
		attempts++
		if attempts > 1 {
			return nil
		}
		if err := latestFakeConn(t, b).blocked(true); err != nil {
			return err
		}
		deadline := time.Now().Add(defaultTestTimeout)
		for s.Stats().BlockedTimes == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s.Stats().BlockedTimes == 0 {
			t.Error("the block never arrived")
		}
		return errors.New("hook failed")
	}})
	close(hold)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Blocked() {
		t.Fatal("Blocked() = true on a connection the broker never blocked")
	}
	if err := s.waitPublishable(ctx); err != nil {
		t.Fatalf("waitPublishable on a healthy connection = %v", err)
	}
	// The block belonged to a connection that never became Ready: it is
	// counted, but no event reports it, so events pair with Connected.
	for {
		select {
		case e := <-events.ch:
			if e.Kind == EventBlocked || e.Kind == EventUnblocked {
				t.Errorf("%v reported for a connection that never became Ready", e.Kind)
			}
			continue
		default:
		}
		break
	}
}

func TestConnectionLostEventReportsReconnecting(t *testing.T) {
	b := startPubFakeBroker(t)
	events := newEventLog()
	s := startFakeSupervisor(t, b, events.handle)
	latestFakeConn(t, b).kill()
	waitReadyAgain(t, s, 2)
	e, ok := nextEventOf(events, EventConnectionLost, defaultTestTimeout)
	if !ok {
		t.Fatal("no ConnectionLost event")
	}
	if e.State != Reconnecting {
		t.Errorf("ConnectionLost carries State %v, want Reconnecting", e.State)
	}
}

func TestCloseDuringHooksIsNoHookFailure(t *testing.T) {
	b := startPubFakeBroker(t)
	// The hook must be registered before the first connection is Ready:
	// added to a Ready supervisor, AddHook would wait for an Up that waits
	// for the Close that comes after it.
	hold := b.holdHandshakes()
	events := newEventLog()
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(), OnEvent: events.handle})
	if err != nil {
		close(hold)
		t.Fatal(err)
	}
	inUp := make(chan struct{})
	_, err = s.AddHook(context.Background(), Hook{Name: "waits", Up: func(ctx context.Context, _ *amqp.Connection) error {
		close(inUp)
		<-ctx.Done()
		return ctx.Err()
	}})
	close(hold)
	if err != nil {
		t.Fatal(err)
	}
	<-inUp
	closeNow(t, s)
	for {
		select {
		case e := <-events.ch:
			if e.Kind == EventHookFailed {
				t.Fatalf("Close during a hook emitted %v: %v", e.Kind, e.Err)
			}
			continue
		default:
		}
		break
	}
	if st := s.Stats(); st.HookFailures != 0 {
		t.Errorf("HookFailures = %d after a Close during a hook, want 0", st.HookFailures)
	}
}

func TestCloseWithoutDeadlineIsBoundedByCloseTimeout(t *testing.T) {
	b := startPubFakeBroker(t)
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// A goroutine lent to a resource that never returns on its own until
	// released: Close must not wait for it past CloseTimeout.
	release := make(chan struct{})
	defer close(release)
	s.work.Go(func() { <-release })
	done := make(chan error, 1)
	go func() { done <- s.Close(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want an error naming the goroutine left and the deadline", err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Close(context.Background()) did not return: CloseTimeout does not bound it")
	}
}

// nextEventOf waits for an event of kind k, discarding others.
func nextEventOf(l *eventLog, k EventKind, d time.Duration) (Event, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e := <-l.ch:
			if e.Kind == k {
				return e, true
			}
		case <-timer.C:
			return Event{}, false
		}
	}
}
