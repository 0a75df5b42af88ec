package conn

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// Phase orders ready hooks: on every new connection all topology hooks run
// first, then consumers, then publishers, each phase in registration order.
// Topology must exist before a consumer subscribes to it, and publishers
// resume last so that nothing is published to a half-built topology.
type Phase int

const (
	// PhaseTopology declares exchanges, queues and bindings.
	PhaseTopology Phase = iota
	// PhaseConsumers resubscribes consumers.
	PhaseConsumers
	// PhasePublishers reopens publisher channels.
	PhasePublishers
)

// Hook is a resource restored on every new connection.
//
// The supervisor's goroutine below is the one goroutine at a time that runs
// its reconnect loop: the loop leaves its goroutine while a Ready connection
// has nothing to do and goes on in a new one when something happens, so two
// Ups may run on different goroutines, but never at the same time.
//
// The contract, which every path keeps (loss, failed connect, Close, removal):
//   - Up runs only on the supervisor's goroutine, never concurrently with any
//     other Up or Down: after each connect, in phase then registration order,
//     before the state becomes Ready; and for a hook added while Ready, on the
//     current connection when AddHook posts it to that goroutine.
//   - Every Up that returned nil is followed by exactly one Down for that
//     connection, on the supervisor's goroutine, before any later Up: when the
//     connection is lost, when a later hook's Up fails the connection attempt,
//     or at Close (with ErrClosed). Removing the hook does not cancel a Down
//     that is owed.
//   - Close runs during Supervisor.Close, while the connection is still open,
//     for every hook still registered, in reverse registration order.
//
// An Up that fails during a connect fails the whole connection attempt,
// which then backs off and is retried, unless its error is permanent
// (reconnect.Permanent), which stops the supervisor. Up, Down and Close run
// under the stall watchdog.
type Hook struct {
	// Name identifies the hook in events, logs and stall reports.
	Name string
	// Phase orders the hook among the others. Defaults to PhaseTopology.
	Phase Phase
	// Up restores the resource on a new connection. It must return when ctx
	// ends: ctx ends when the supervisor closes, and for the Up that AddHook
	// runs, also when AddHook's ctx does. Required.
	Up func(ctx context.Context, c *amqp.Connection) error
	// Down, if set, is told that the connection its last successful Up ran on
	// is gone, with the reason (ErrClosed on Close). It runs on the
	// supervisor's goroutine: it must return quickly and not call back into
	// the Supervisor's blocking methods. Defaults to nil.
	Down func(err error)
	// Close, if set, releases the resource during Supervisor.Close, before the
	// connection is closed; ctx is Close's context. Defaults to nil.
	Close func(ctx context.Context) error
}

// hook is a registered Hook.
type hook struct {
	Hook
	// Guarded by Supervisor.mu.
	registered bool
	// first receives the outcome of the Up that AddHook waits for; nil when
	// nobody waits. running: the loop has started that Up, so AddHook can no
	// longer withdraw it.
	first    chan error
	firstCtx context.Context
	running  bool
	// upDone is closed when the Up that is running returns; nil when none
	// runs. remove waits on it, so that no Up runs after remove returned.
	upDone chan struct{}
}

// AddHook registers h. If the supervisor is Ready, h.Up runs on the current
// connection, on the supervisor's goroutine, before AddHook returns: an error
// it returns is returned (and h is not registered), unless the connection
// died under it and the error is not permanent, in which case h stays
// registered and runs on the next connection. Otherwise h runs on the next
// connection. ctx bounds the wait; if it ends before Up has started, h is
// not registered and ctx's error is returned. The returned func unregisters
// h; it waits for an Up of h that is running, so that no Up of h runs
// after it returns; it does not call Close, and a Down owed for an Up that
// ran is still made.
func (s *Supervisor) AddHook(ctx context.Context, h Hook) (remove func(), err error) {
	if h.Up == nil {
		return nil, errors.New("warren: AddHook: Up is required")
	}
	hk := &hook{Hook: h, registered: true}
	remove = func() { s.removeHook(hk) }
	s.mu.Lock()
	if s.state == Closing || s.state == Closed {
		s.mu.Unlock()
		return nil, s.closedErr()
	}
	s.hooks = append(s.hooks, hk)
	if s.live.Load() == nil || s.loopLane.Load().Current() {
		// Not Ready: the loop runs every hook registered before it turns
		// Ready, this one included (see pendingHooks). Called from a hook
		// on the loop's own goroutine: waiting would wait for ourselves;
		// the loop runs the new hook once the current one returns.
		s.mu.Unlock()
		return remove, nil
	}
	first := make(chan error, 1)
	hk.first, hk.firstCtx = first, ctx
	s.mu.Unlock()
	select {
	case s.hookKick <- struct{}{}:
	default: // a kick is pending; the loop runs every pending hook
	}
	s.wake()
	select {
	case err := <-first:
		return finishAdd(remove, err)
	case <-ctx.Done():
	}
	s.mu.Lock()
	if !hk.running && hk.first != nil {
		hk.first = nil
		s.removeHookLocked(hk)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	s.mu.Unlock()
	// Up has started with a context that ends with ctx, or its outcome is
	// sent already: it comes promptly.
	return finishAdd(remove, <-first)
}

func finishAdd(remove func(), err error) (func(), error) {
	if err != nil {
		return nil, err
	}
	return remove, nil
}

// removeHook unregisters hk and waits for an Up of hk that is running to
// return (unless called on the supervisor's goroutine, where none can be):
// after it, hk's Up neither runs nor starts.
func (s *Supervisor) removeHook(hk *hook) {
	s.mu.Lock()
	s.removeHookLocked(hk)
	running := hk.upDone
	s.mu.Unlock()
	if running != nil && !s.loopLane.Load().Current() {
		<-running
	}
}

// removeHookLocked unregisters hk. Caller must hold s.mu.
func (s *Supervisor) removeHookLocked(hk *hook) {
	if !hk.registered {
		return
	}
	hk.registered = false
	for i, h := range s.hooks {
		if h == hk {
			s.hooks = append(s.hooks[:i], s.hooks[i+1:]...)
			return
		}
	}
}

// pendingHooks returns the registered hooks that have not run on ss yet, in
// phase then registration order. If none are left and publish is set, it
// makes ss the live session under the same lock, so that a hook added
// concurrently either sees the live session (and posts itself to the loop)
// or is picked up here. A hook added while a connect is under way runs after
// the hooks that already ran on that connection, whatever its phase.
func (s *Supervisor) pendingHooks(ss *session, publish bool) []*hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var todo []*hook
	for _, h := range s.hooks {
		if !ss.has[h] {
			todo = append(todo, h)
		}
	}
	if len(todo) == 0 {
		if publish {
			s.live.Store(ss)
		}
		return nil
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].Phase < todo[j].Phase })
	return todo
}

// runHooks runs every pending hook on ss until none is left, then makes ss
// the live session. The caller moves to Ready afterwards. The first failure
// stops it; hooks that ran stay in ss.ran, owed a Down.
//
// It runs one hook at a time, the first pending one in phase order, and looks
// again after each: a hook added meanwhile (from another hook, or by a caller
// while the connect is under way) still runs in its phase, before the hooks
// of later phases that have not run yet.
func (s *Supervisor) runHooks(ss *session) error {
	for {
		todo := s.pendingHooks(ss, true)
		if todo == nil {
			return nil
		}
		if err := s.runUp(ss, todo[0]); err != nil {
			return err
		}
	}
}

// runAdded runs, on the live session ss, the hooks AddHook posted. A hook
// whose Up fails is unregistered and the error goes to AddHook, unless the
// connection died under it with a transient error: then it stays registered
// for the next connection and AddHook returns nil. Once the connection is
// closed it runs nothing more: the loss comes next, and lose answers the
// AddHook calls still waiting.
func (s *Supervisor) runAdded(ss *session) {
	for !ss.conn.IsClosed() {
		todo := s.pendingHooks(ss, false)
		if todo == nil {
			return
		}
		for _, h := range todo {
			if ss.conn.IsClosed() {
				return
			}
			s.mu.Lock()
			waiter := h.firstCtx
			s.mu.Unlock()
			err := s.runUp(ss, h)
			switch {
			case err == nil:
			case s.ctx.Err() != nil:
				// Close cut the Up short: nothing will run the hook.
				s.removeHook(h)
				err = ErrClosed
			case waiter != nil && waiter.Err() != nil:
				// AddHook's ctx ended under the Up: the caller gets its
				// ctx's error, so the hook must not stay registered.
				s.removeHook(h)
				err = chain(err, waiter.Err())
			case !ss.conn.IsClosed() || reconnect.IsPermanent(err):
				s.removeHook(h)
			default:
				err = nil // it runs on the next connection
			}
			s.settleFirst(h, err)
		}
	}
}

// runUp runs h.Up on ss under the watchdog and records its success. A hook
// removed (or withdrawn by its AddHook) since it was picked is skipped: no
// Up starts after remove returned.
func (s *Supervisor) runUp(ss *session, h *hook) error {
	ctx := s.ctx
	s.mu.Lock()
	if !h.registered {
		s.mu.Unlock()
		return nil
	}
	h.running = true // from here AddHook can no longer withdraw it
	firstCtx := h.firstCtx
	upDone := make(chan struct{})
	h.upDone = upDone
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		h.upDone = nil
		s.mu.Unlock()
		close(upDone)
	}()
	if firstCtx != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(firstCtx, cancel)()
	}
	returned := make(chan struct{})
	defer close(returned)
	defer context.AfterFunc(ctx, func() { s.cutShort(ss, h, returned) })()
	if err := s.callUser("ready hook "+h.Name, func() error { return h.Up(ctx, ss.conn) }); err != nil {
		return chain(fmt.Errorf("%w: %s", ErrHookFailed, h.Name), err)
	}
	ss.didRun(h)
	s.settleFirst(h, nil)
	return nil
}

// upGrace is how long an Up may run on after its ctx ended before its
// connection is closed under it.
const upGrace = 500 * time.Millisecond

// cutShort bounds an Up whose ctx ended: an AMQP RPC has no deadline of its
// own, so an Up waiting on a broker that never answers (a declaration the
// broker sits on while its heartbeats flow) would hold the supervisor's
// goroutine, and Close and AddHook with it, for ever. If the Up has not
// returned upGrace after its ctx ended, the connection's socket is closed,
// which fails every RPC it waits on; the supervisor then reconnects.
func (s *Supervisor) cutShort(ss *session, h *hook, returned <-chan struct{}) {
	t := time.NewTimer(upGrace)
	defer t.Stop()
	select {
	case <-returned:
	case <-t.C:
		s.log.Warn("warren: ready hook ignores its ended context; closing its connection", "hook", h.Name,
			"url", s.redacted[ss.url])
		ss.monitor.Close()
	}
}

// settleFirst hands err to the AddHook call waiting for h's first Up, if any.
func (s *Supervisor) settleFirst(h *hook, err error) {
	s.mu.Lock()
	first := h.first
	h.first, h.firstCtx, h.running = nil, nil, false
	s.mu.Unlock()
	if first != nil {
		first <- err
	}
}

// settleWaiters answers every AddHook still waiting: with nil after a lost
// connection (their hooks run on the next one), or with err at Close (their
// hooks are unregistered, since nothing will run them).
func (s *Supervisor) settleWaiters(err error) {
	s.mu.Lock()
	var waiting []*hook
	for _, h := range s.hooks {
		if h.first != nil {
			waiting = append(waiting, h)
		}
	}
	s.mu.Unlock()
	for _, h := range waiting {
		if err != nil {
			s.removeHook(h)
		}
		s.settleFirst(h, err)
	}
}

// hooksDown makes the Down owed to every hook that ran on ss, in reverse
// order, registered or not, and empties ss.ran so that none is made twice.
func (s *Supervisor) hooksDown(ss *session, reason error) {
	for i := len(ss.ran) - 1; i >= 0; i-- {
		h := ss.ran[i]
		if h.Down != nil {
			_ = s.callUser("hook down "+h.Name, func() error { h.Down(reason); return nil })
		}
	}
	ss.ran = nil
}

// closeHooks runs every hook's Close in reverse registration order, each even
// if an earlier one failed, and joins their errors.
func (s *Supervisor) closeHooks(ctx context.Context) error {
	s.mu.Lock()
	hooks := append([]*hook(nil), s.hooks...)
	s.mu.Unlock()
	var errs []error
	for i := len(hooks) - 1; i >= 0; i-- {
		h := hooks[i]
		if h.Close == nil {
			continue
		}
		if err := s.callUser("hook close "+h.Name, func() error { return h.Close(ctx) }); err != nil {
			if !strings.HasPrefix(err.Error(), "warren: ") { // warren's own resources name themselves
				err = fmt.Errorf("close %s: %w", h.Name, err)
			}
			errs = append(errs, err)
			// Kept at once: a Close whose ctx ends while the hooks
			// after this one still run returns it (see Close).
			s.mu.Lock()
			s.hooksCloseErr = errors.Join(errs...)
			s.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}
