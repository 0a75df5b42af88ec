package conn

// Adversarial tests against the supervisor lifecycle redesign. Each test
// states the guarantee it checks; a failure is a defect, not a flaky test.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// Guarantee 4: Close(ctx) is bounded by CloseTimeout when ctx has no
// deadline ("so Close always returns"). A slow OnEvent handler (not calling
// Close, just slow) keeps the dispatcher from exiting, and Close waits for
// s.done with only the caller's ctx as a bound.
func TestAttackCloseWithoutDeadlineUnboundedBySlowOnEvent(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s, err := New(Options{
		URLs:         []string{closedPortURL(t)},
		Reconnect:    fastPolicy(),
		Logger:       discardLogger(),
		CloseTimeout: 200 * time.Millisecond,
		OnEvent: func(Event) {
			once.Do(func() { close(entered) })
			<-release
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(defaultTestTimeout):
		t.Fatal("no event delivered")
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	returned := false
	defer func() {
		close(release)
		if !returned {
			<-closed
		}
		<-s.Done()
	}()
	select {
	case <-closed:
		returned = true
	case <-time.After(200*time.Millisecond + 3*time.Second):
		t.Errorf("Close(context.Background()) with CloseTimeout 200ms has not returned after 3s more: " +
			"it waits for the OnEvent handler with no bound")
	}
}

// Guarantee 4 again: Close(context.Background()) called from a hook's Up
// (one AddHook runs while Ready) never returns: the caller is the run
// goroutine Close waits for, and nothing bounds the wait by CloseTimeout.
// (The OnEvent handler has a special case for this; hooks do not, and the
// Hook docs forbid blocking calls only in Down.)
func TestAttackCloseFromHookUpHangs(t *testing.T) {
	b := startPubFakeBroker(t)
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(pubTestCtx(t)); err != nil {
		t.Fatal(err)
	}
	// A context with no deadline that the test can still end, to clean up.
	userCtx, cancelUser := context.WithCancel(context.Background())
	defer cancelUser()
	closeReturned := make(chan error, 1)
	added := make(chan error, 1)
	go func() {
		_, err := s.AddHook(context.Background(), Hook{Name: "closer", Up: func(context.Context, *amqp.Connection) error {
			closeReturned <- s.Close(userCtx)
			return nil
		}})
		added <- err
	}()
	select {
	case err := <-closeReturned:
		t.Logf("Close from Up returned %v", err)
	case <-time.After(200*time.Millisecond + 3*time.Second):
		t.Errorf("Close(ctx without deadline) called from a hook's Up has not returned 3s past CloseTimeout: deadlock on the supervisor goroutine")
		cancelUser()
		<-closeReturned
	}
	<-added
	<-s.Done()
}

// Guarantee 1: AddHook while Ready posts the hook to the supervisor
// goroutine and waits. A hook whose Up registers another hook (a consumer
// set up lazily, a topology declared by a plugin's Up) works during a
// connect (AddHook returns at once, the loop runs the new hook after) but
// deadlocks while Ready: the inner AddHook waits for the goroutine that is
// running the outer Up, until ctx ends.
func TestAttackAddHookFromUpWhileReadyDeadlocks(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	var innerRan atomic.Bool
	var innerErr error
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.AddHook(ctx, Hook{Name: "outer", Up: func(ctx context.Context, _ *amqp.Connection) error {
		_, innerErr = s.AddHook(ctx, Hook{Name: "inner", Up: func(context.Context, *amqp.Connection) error {
			innerRan.Store(true)
			return nil
		}})
		return innerErr
	}})
	if err != nil || innerErr != nil {
		t.Errorf("AddHook from inside an Up while Ready: outer err %v, inner err %v after %v (inner Up ran: %v); want both nil at once",
			err, innerErr, time.Since(start).Round(time.Millisecond), innerRan.Load())
	}
}

// Unregistering is "the returned func unregisters h". A hook removed while
// the supervisor runs the hooks of a new connection still gets its Up on that
// connection after remove returned: runHooks/runAdded work from a snapshot
// (pendingHooks) and do not recheck registration before each Up.
func TestAttackUpRunsAfterRemoveReturned(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	var conns atomic.Int32
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var gateArmed atomic.Bool
	_, err := s.AddHook(pubTestCtx(t), Hook{Name: "slow", Up: func(context.Context, *amqp.Connection) error {
		if gateArmed.Load() {
			entered <- struct{}{}
			<-release
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	var upsAfterRemove atomic.Int32
	var removed atomic.Bool
	removeB, err := s.AddHook(pubTestCtx(t), Hook{Name: "removed", Up: func(context.Context, *amqp.Connection) error {
		conns.Add(1)
		if removed.Load() {
			upsAfterRemove.Add(1)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	gateArmed.Store(true)
	latestFakeConn(t, b).kill()
	select {
	case <-entered:
	case <-time.After(defaultTestTimeout):
		t.Fatal("slow hook's Up did not run on the new connection")
	}
	removeB()
	removed.Store(true)
	gateArmed.Store(false)
	close(release)
	waitReadyAgain(t, s, 2)
	if n := upsAfterRemove.Load(); n != 0 {
		t.Errorf("hook's Up ran %d time(s) after its remove func returned", n)
	}
}

// Guarantee 1 / 4: a supervisor that gives up (MaxAttempts) runs a teardown
// (fail -> teardownWith) without ever moving to Closing. An AddHook (or a
// Consume) during that teardown is accepted with nil, as if its hook would
// run on the next connection, but nothing will ever run or close it: the
// consumer's goroutine outlives Done.
func TestAttackAddHookDuringGiveUpIsOrphaned(t *testing.T) {
	inClose := make(chan struct{})
	release := make(chan struct{})
	s, err := New(Options{
		URLs:         []string{closedPortURL(t)},
		Reconnect:    reconnect.Policy{Initial: 300 * time.Millisecond, Max: 300 * time.Millisecond, Jitter: 1e-9, MaxAttempts: 2},
		Logger:       discardLogger(),
		CloseTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddHook(pubTestCtx(t), Hook{Name: "slow close",
		Up:    func(context.Context, *amqp.Connection) error { return nil },
		Close: func(context.Context) error { close(inClose); <-release; return nil },
	}); err != nil {
		t.Fatalf("first AddHook: %v", err)
	}
	select {
	case <-inClose:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the supervisor did not give up")
	}
	// The supervisor is tearing down for good.
	_, addErr := s.AddHook(pubTestCtx(t), Hook{Name: "late", Up: func(context.Context, *amqp.Connection) error { return nil }})
	c, consErr := s.Consume(pubTestCtx(t), NamedQueue("q"), func(context.Context, amqp.Delivery) error { return nil }, ConsumerOptions{})
	close(release)
	select {
	case <-s.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("supervisor not done")
	}
	if !errors.Is(addErr, ErrClosed) {
		t.Errorf("AddHook during the give-up teardown returned %v; want ErrClosed (the hook can never run)", addErr)
	}
	if consErr == nil {
		select {
		case <-c.done:
		case <-time.After(time.Second):
			t.Errorf("Consume during the give-up teardown returned a consumer whose goroutine is still running after the supervisor is Done (state %v)", s.State())
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			_ = c.Close(ctx)
			cancel()
		}
	} else if !errors.Is(consErr, ErrClosed) {
		t.Errorf("Consume: %v", consErr)
	}
}

// hookCount returns how many hooks are registered.
func hookCount(s *Supervisor) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hooks)
}

// Guarantee 1: AddHook on a Ready supervisor waits "bounded by ctx
// (withdrawn if ctx ends before Up starts)". pendingHooks marks every hook
// of a batch running at once, so a hook posted together with a slow one can
// no longer be withdrawn although its Up has not started: its AddHook
// outlives its ctx by as long as the slow Up runs, and then its Up runs
// (with a dead ctx) and, if it ignores ctx, the hook is registered.
func TestAttackAddHookNotBoundedByCtxBehindSlowHookOfSameBatch(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	// Keep the supervisor goroutine busy so that the next two hooks are
	// posted together and picked up in one batch.
	busy, busyIn, busyOut := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = s.AddHook(context.Background(), Hook{Name: "busy", Up: func(context.Context, *amqp.Connection) error {
			close(busyIn)
			<-busyOut
			return nil
		}})
		close(busy)
	}()
	<-busyIn
	slowOut := make(chan struct{})
	slowDone := make(chan struct{})
	go func() {
		_, _ = s.AddHook(context.Background(), Hook{Name: "slow", Up: func(context.Context, *amqp.Connection) error {
			<-slowOut
			return nil
		}})
		close(slowDone)
	}()
	for hookCount(s) < 2 {
		time.Sleep(time.Millisecond)
	}
	var quickRan atomic.Bool
	type res struct {
		err  error
		took time.Duration
	}
	quick := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.AddHook(ctx, Hook{Name: "quick", Up: func(context.Context, *amqp.Connection) error {
			quickRan.Store(true) // ignores ctx, as a cheap Up may
			return nil
		}})
		quick <- res{err, time.Since(start)}
	}()
	for hookCount(s) < 3 {
		time.Sleep(time.Millisecond)
	}
	close(busyOut) // the loop now takes [slow, quick] as one batch
	<-busy
	var r res
	select {
	case r = <-quick:
	case <-time.After(300*time.Millisecond + 2*time.Second):
		t.Errorf("AddHook with a 300ms ctx has not returned 2s after its ctx ended (its Up has not started: it waits behind another hook's Up)")
		close(slowOut)
		r = <-quick
		slowOut = nil
	}
	if slowOut != nil {
		close(slowOut)
	}
	<-slowDone
	if r.err == nil || quickRan.Load() {
		t.Errorf("AddHook whose ctx ended before its Up started returned %v after %v (Up ran: %v); want ctx's error and no Up",
			r.err, r.took.Round(time.Millisecond), quickRan.Load())
	}
}

// Phase: "on every new connection all topology hooks run first, then
// consumers, then publishers". A topology hook registered while a connect is
// running its hooks (DeclareTopology at startup, from another goroutine, or
// from a plugin) runs after the consumer hooks of the batch runHooks already
// took: pendingHooks sorts each batch, not the whole connection's run.
func TestAttackPhaseOrderBrokenByHookAddedDuringConnect(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	var mu sync.Mutex
	var order []string
	var conn2 atomic.Bool
	record := func(name string) {
		if conn2.Load() {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}
	}
	entered, release := make(chan struct{}, 1), make(chan struct{})
	if _, err := s.AddHook(pubTestCtx(t), Hook{Name: "topology A", Phase: PhaseTopology, Up: func(context.Context, *amqp.Connection) error {
		record("topology A")
		if conn2.Load() {
			entered <- struct{}{}
			<-release
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddHook(pubTestCtx(t), Hook{Name: "consumer", Phase: PhaseConsumers, Up: func(context.Context, *amqp.Connection) error {
		record("consumer")
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	conn2.Store(true)
	latestFakeConn(t, b).kill()
	select {
	case <-entered:
	case <-time.After(defaultTestTimeout):
		t.Fatal("no Up on the new connection")
	}
	// Not Ready: AddHook registers and returns at once.
	if _, err := s.AddHook(pubTestCtx(t), Hook{Name: "topology B", Phase: PhaseTopology, Up: func(context.Context, *amqp.Connection) error {
		record("topology B")
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitReadyAgain(t, s, 2)
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 3 || order[2] != "consumer" {
		t.Errorf("Ups on the new connection ran in order %v; every topology hook must run before the consumers", order)
	}
}

// AddHook "returns ErrClosed" once the supervisor is closing, and Close
// answers waiting AddHook calls with ErrClosed; and Close "during hooks" is
// no hook failure. But an AddHook whose Up is running when Close starts (its
// ctx is cancelled by Close) returns a hook failure (ErrHookFailed wrapping
// context.Canceled), not ErrClosed: a caller cannot tell a shutdown from a
// broken hook.
func TestAttackAddHookInterruptedByCloseIsNotErrClosed(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	entered := make(chan struct{})
	added := make(chan error, 1)
	go func() {
		_, err := s.AddHook(context.Background(), Hook{Name: "ctx-aware", Up: func(ctx context.Context, _ *amqp.Connection) error {
			close(entered)
			<-ctx.Done() // a declaration waiting on the broker, say
			return ctx.Err()
		}})
		added <- err
	}()
	<-entered
	closeNow(t, s)
	err := <-added
	if !errors.Is(err, ErrClosed) || errors.Is(err, ErrHookFailed) {
		t.Errorf("AddHook cut short by Close returned %v; want ErrClosed, not a hook failure", err)
	}
}

// Hook contract: "Up ... must return when ctx ends: ctx ends when the
// supervisor closes, and for the Up that AddHook runs, also when AddHook's
// ctx does". warren's own Ups break it: DeclareTopology's (declareTopology
// passes ctx only to Declare; the AMQP RPCs ignore it) and the consumer's
// (c.up ignores ctx). A declaration the broker does not answer (here the
// fake ignores queue.declare; in production a quorum queue declared while
// its cluster has no majority, or any RPC stuck behind a busy node, with
// heartbeats still flowing so no dead peer is detected) then holds the
// supervisor goroutine: DeclareTopology outlives its ctx, and
// Close(context.Background()) outlives CloseTimeout (guarantee 4), for as long
// as the broker keeps silent.
func TestAttackBuiltinUpIgnoresCtxSoCloseIsUnbounded(t *testing.T) {
	b := startPubFakeBroker(t)
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(pubTestCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Unwedge: drop the socket, so the RPC fails and everything unwinds.
		latestFakeConn(t, b).kill()
		<-s.Done()
	}()
	declared := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := s.DeclareTopology(ctx, Topology{Queues: []*Queue{{Name: "never-answered"}}})
		declared <- err
	}()
	select {
	case err := <-declared:
		t.Logf("DeclareTopology returned %v", err)
	case <-time.After(300*time.Millisecond + 2*time.Second):
		t.Errorf("DeclareTopology with a 300ms ctx has not returned 2s after its ctx ended: its Up ignores ctx")
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	select {
	case <-closed:
	case <-time.After(200*time.Millisecond + 3*time.Second):
		t.Errorf("Close(context.Background()) with CloseTimeout 200ms has not returned after 3s more: the supervisor goroutine is stuck in DeclareTopology's Up, which ignores ctx")
	}
}
