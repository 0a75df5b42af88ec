package conn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// dropWarnInterval rate-limits the warning about dropped events.
const dropWarnInterval = 5 * time.Second

// Supervisor keeps one AMQP connection alive: it dials, watches the socket,
// reconnects with backoff, re-runs ready hooks on every new connection, and
// stops cleanly on Close. The reconnect loop owns the amqp091-go connection
// and the reconnect schedule; it runs on one goroutine at a time, and on none
// while a Ready connection has nothing to do (park.go). Every other method
// talks to it through the state lock, channels, the lifetime context and
// wake.
type Supervisor struct {
	opts     Options
	redacted []string // opts.URLs, redacted once
	log      *slog.Logger
	watchdog *heartbeat.Watchdog
	// handlerLane watches the event handler. It is bound to each
	// delivering goroutine of the dispatcher as it starts; Close uses it to
	// notice a call from inside the handler.
	handlerLane atomic.Pointer[heartbeat.Lane]
	// loopLane is bound to the goroutine running the loop, where hooks run.
	loopLane atomic.Pointer[heartbeat.Lane]
	events   *dispatcher
	dropWarn dropWarner
	ctr      counters
	// streak counts the dials that failed in a row since the last Ready
	// connection, for NotReadyError.
	streak atomic.Uint64
	// work counts the goroutines of publishers and consumers; Close waits
	// for it to drain.
	work *workGroup

	// ctx lives until Close is called; cancelling it stops the run loop.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	// closeCtx is the first Close call's context, bounded by CloseTimeout
	// when it has no deadline; it bounds teardown. Written once before
	// cancel, read by run after ctx is done.
	closeCtx    context.Context
	closeCancel context.CancelFunc // guarded by mu
	closeErr    error              // teardown result, written before loopDone closes
	// hooksCloseErr is what the hooks' Close returned so far (the
	// publishers' *UnconfirmedError reports), kept as each returns so that
	// a Close whose ctx ends before the rest of the teardown still returns
	// it. Guarded by mu.
	hooksCloseErr error
	loopDone      chan struct{} // run has finished teardown
	done          chan struct{} // run and the dispatcher have exited

	mu         sync.Mutex
	state      State
	stateCh    changeSignal // every state change
	blockedCh  changeSignal // every Blocked change
	stateSince time.Time
	timeIn     [numStates]time.Duration
	err        error // the last connection error
	// live is the session while Ready, else nil. Written under mu (with
	// state); read without it on hot paths.
	live  atomic.Pointer[session]
	owed  owedMemory // the owed limit's lessons from earlier connections
	hooks []*hook    // registered hooks, in registration order
	// hookKick tells the loop to run hooks added while Ready; capacity 1.
	hookKick chan struct{}

	// wakes counts the wakes of the loop since it last parked, plus one
	// while a goroutine runs it (see park.go); loop is its state.
	wakes atomic.Int64
	loop  loopState

	// topoMu guards topologies, the Topologies registered with
	// DeclareTopology, which a consumer that finds its queue deleted
	// declares it again from; redeclareMu serializes those declarations.
	topoMu      sync.Mutex
	topologies  []*Topology
	redeclareMu sync.Mutex
}

// New validates opts, copies them, and starts supervising: the first dial
// happens at once in the background. New does not wait for a connection; use
// WaitReady for that. Stop the supervisor with Close.
func New(opts Options) (*Supervisor, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Supervisor{
		opts:       opts,
		log:        opts.Logger,
		loopDone:   make(chan struct{}),
		done:       make(chan struct{}),
		hookKick:   make(chan struct{}, 1),
		stateSince: time.Now(),
		dropWarn:   dropWarner{interval: dropWarnInterval},
		work:       newWorkGroup(),
	}
	for _, u := range opts.URLs {
		s.redacted = append(s.redacted, RedactURL(u))
	}
	s.watchdog = heartbeat.NewWatchdog(s.reportStall)
	s.events = newDispatcher(opts.EventBuffer, opts.OnEvent, s.callHandler, s.warnDropped)
	// The dispatcher starts a goroutine per burst of events; each one gets
	// a Lane of its own before its first handler call.
	s.events.onRun = func() { s.handlerLane.Store(s.watchdog.Lane()) }
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wakes.Store(1) // the goroutine below runs the loop
	go s.run()
	return s, nil
}

// State returns the current state.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Blocked reports whether the broker is blocking the current connection
// because of a resource alarm. Publishes wait while it is set. The flag
// belongs to the connection: it is false while no connection is Ready, and a
// new connection starts unblocked.
func (s *Supervisor) Blocked() bool {
	live := s.live.Load()
	return live != nil && live.blocked.Load()
}

// Err returns the last connection error (redacted), or nil. After a permanent
// failure it is the error that stopped the supervisor.
func (s *Supervisor) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Done returns a channel closed once the supervisor has stopped for good,
// after Close or a permanent error, and every goroutine of its own has exited.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// WaitForStateChange waits until the state differs from from, and reports
// whether it did before ctx ended.
func (s *Supervisor) WaitForStateChange(ctx context.Context, from State) bool {
	s.mu.Lock()
	if s.state != from {
		s.mu.Unlock()
		return true
	}
	ch := s.stateCh.wait()
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// WaitReady waits until the supervisor is Ready. It returns ctx's error if ctx
// ends first, and an error wrapping ErrClosed (and the permanent error, if
// that is what stopped it) once the supervisor is closing or closed.
//
// When ctx ends first the error is a *NotReadyError that names the state,
// the failed attempts and the last connection error, and matches ctx's error.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	start := time.Now()
	for {
		st := s.State()
		switch st {
		case Ready:
			return nil
		case Closing, Closed:
			return s.closedErr()
		}
		if !s.WaitForStateChange(ctx, st) {
			return s.notReady(start, ctx.Err())
		}
	}
}

// closedErr is the error of an operation on a closing or closed
// supervisor: ErrClosed, with the permanent error that stopped it, if any.
func (s *Supervisor) closedErr() error {
	s.mu.Lock()
	st, err := s.state, s.err
	s.mu.Unlock()
	if st == Closed && err != nil {
		return chain(ErrClosed, err)
	}
	return errSupervisorClosed
}

// waitPublishable waits until the supervisor is Ready and the broker is not
// blocking the connection, bounded by ctx. Publishing into a blocked
// connection would stall in a socket write that ignores ctx.
func (s *Supervisor) waitPublishable(ctx context.Context) error {
	start := time.Now()
	for {
		s.mu.Lock()
		st, live, stateCh, blockedCh := s.state, s.live.Load(), s.stateCh.wait(), s.blockedCh.wait()
		s.mu.Unlock()
		switch {
		case st == Ready && live != nil && !live.blocked.Load():
			return nil
		case st == Closing || st == Closed:
			return s.closedErr()
		}
		select {
		case <-stateCh:
		case <-blockedCh:
		case <-ctx.Done():
			return s.notReady(start, ctx.Err())
		}
	}
}

// waitUnblocked waits until the broker is not blocking the current
// connection, bounded by ctx.
func (s *Supervisor) waitUnblocked(ctx context.Context) error {
	if !s.Blocked() {
		return nil // the hot path: no lock per message
	}
	for {
		s.mu.Lock()
		live, ch := s.live.Load(), s.blockedCh.wait()
		s.mu.Unlock()
		if live == nil || !live.blocked.Load() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// blockedChanged wakes waitPublishable and waitUnblocked callers after a
// session's blocked flag changed.
func (s *Supervisor) blockedChanged() {
	s.mu.Lock()
	s.blockedCh.changed()
	s.mu.Unlock()
}

// Channel waits until the supervisor is Ready, bounded by ctx, and opens a
// channel on the current connection. The channel dies with that connection:
// resources that must survive reconnects belong in a ready hook instead.
func (s *Supervisor) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		if err := s.WaitReady(ctx); err != nil {
			return nil, err
		}
		live := s.live.Load()
		if live == nil {
			continue // lost between the two looks; wait again
		}
		ch, err := live.conn.Channel()
		if err != nil {
			return nil, fmt.Errorf("warren: open channel: %w", err)
		}
		return ch, nil
	}
}

// setState is the one place the state changes. It ignores a change to the
// same state, never leaves Closed, records err (if non-nil) as the last
// error, wakes WaitForStateChange callers, logs, and emits an event.
func (s *Supervisor) setState(to State, err error) {
	s.mu.Lock()
	from := s.state
	// Closing leads only to Closed: a connection that became ready while
	// Close was starting must not announce Ready.
	if from == to || from == Closed || (from == Closing && to != Closed) {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	s.timeIn[from] += now.Sub(s.stateSince)
	s.stateSince = now
	s.state = to
	if err != nil {
		s.err = err
	}
	s.stateCh.changed()
	s.mu.Unlock()

	attrs := []any{"from", from.String(), "to", to.String()}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.log.Info("warren: state changed", attrs...)
	s.emit(Event{Kind: EventStateChanged, State: to, Err: err})
}

// emit stamps e with the time and the current state and hands it to the
// dispatcher; it never blocks.
func (s *Supervisor) emit(e Event) {
	if e.Kind == EventStateChanged {
		s.emitIn(e.State, e)
		return
	}
	s.emitIn(s.State(), e)
}

// emitIn is emit with the state given: the state an event leaves the
// supervisor in, when the event is reported just before the change.
func (s *Supervisor) emitIn(st State, e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.State = st
	s.ctr.emitted.Add(1)
	s.events.emit(e)
}

func (s *Supervisor) warnDropped(total uint64) {
	if s.dropWarn.due(time.Now()) {
		s.log.Warn("warren: event buffer full, dropping oldest events; OnEvent is too slow",
			"dropped_total", total, "buffer", s.opts.EventBuffer)
	}
}

// callHandler runs the user's event handler under the watchdog and survives
// its panics: a broken handler must not take the dispatcher down. Only the
// dispatcher's delivering goroutine calls it, after binding the Lane (a
// watchdog bound to that goroutine, cheaper per call) in onRun.
func (s *Supervisor) callHandler(h func(Event), e Event) {
	_ = s.guard("event handler", s.handlerLane.Load().Watch, func() error { h(e); return nil })
}

// callUser runs a user callback under the stall watchdog and turns a panic
// into an error wrapping ErrHookPanicked.
func (s *Supervisor) callUser(name string, fn func() error) error {
	return s.guard(name, s.watchdog.Watch, fn)
}

func (s *Supervisor) guard(name string, watch func(string, time.Duration) func(), fn func() error) (err error) {
	done := watch(name, s.opts.StallThreshold)
	defer done()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrHookPanicked, name, r)
			s.log.Error("warren: user callback panicked", "callback", name, "panic", fmt.Sprint(r))
		}
	}()
	return fn()
}

// reportStall is the watchdog's report function; it runs on a timer goroutine.
func (s *Supervisor) reportStall(st heartbeat.Stall) {
	if st.Finished {
		s.log.Warn("warren: stalled callback returned", "callback", st.Name, "took", st.Elapsed)
	} else {
		s.ctr.stalls.Add(1)
		s.log.Warn("warren: callback stalled", "callback", st.Name, "running_for", st.Elapsed,
			"stack", string(st.Stack))
	}
	s.emit(Event{Kind: EventStall, Stall: &st})
}
