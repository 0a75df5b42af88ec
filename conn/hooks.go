package conn

import (
	"context"
	"errors"
	"fmt"
	"sort"

	amqp "github.com/rabbitmq/amqp091-go"
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

// Hook is a resource restored on every new connection. Up runs on the
// supervisor's goroutine after each connect, before the state becomes Ready;
// an Up that fails fails the whole connection attempt, which then backs off
// and is retried, unless its error is permanent (reconnect.Permanent), which
// stops the supervisor. Up runs under the stall watchdog.
type Hook struct {
	// Name identifies the hook in events, logs and stall reports.
	Name string
	// Phase orders the hook among the others. Defaults to PhaseTopology.
	Phase Phase
	// Up restores the resource on a new connection. ctx ends when the
	// supervisor closes. When a hook is added just as the connection changes,
	// AddHook's call of Up on the old connection may overlap the run loop's
	// call on the new one: Up must tolerate that (check the connection it is
	// given, and serialize its own state). Required.
	Up func(ctx context.Context, c *amqp.Connection) error
	// Down, if set, is told that the connection Up last ran on is gone, with
	// the reason (ErrClosed on Close). It must return quickly and not call
	// back into the Supervisor's blocking methods. Defaults to nil.
	Down func(err error)
	// Close, if set, releases the resource during Supervisor.Close, before the
	// connection is closed; ctx is Close's context. Defaults to nil.
	Close func(ctx context.Context) error
}

// hook is a registered Hook.
type hook struct {
	Hook
	seq uint64
}

// AddHook registers h. If the supervisor is Ready, h.Up runs on the current
// connection before AddHook returns, and its error is returned (and h is not
// registered). Otherwise h runs on the next connection. The returned func
// unregisters h; it does not call Close.
func (s *Supervisor) AddHook(ctx context.Context, h Hook) (remove func(), err error) {
	if h.Up == nil {
		return nil, errors.New("warren: AddHook: Up is required")
	}
	s.mu.Lock()
	if s.state == Closing || s.state == Closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.hookSeq++
	hk := &hook{Hook: h, seq: s.hookSeq}
	s.hooks = append(s.hooks, hk)
	c, gen := s.conn, s.connGen
	s.mu.Unlock()

	remove = func() { s.removeHook(hk) }
	if c == nil {
		// Not Ready: the loop runs every hook registered before it turns
		// Ready, this one included (see runHooks).
		return remove, nil
	}
	if err := s.callUser("ready hook "+h.Name, func() error { return h.Up(ctx, c) }); err != nil {
		s.mu.Lock()
		stillLive := s.connGen == gen && s.conn == c
		s.mu.Unlock()
		if stillLive {
			remove()
			return nil, fmt.Errorf("%w: %s: %w", ErrHookFailed, h.Name, err)
		}
		// The connection died under Up; the loop runs the hook again on the
		// next connection, so the resource will be restored.
	}
	return remove, nil
}

func (s *Supervisor) removeHook(hk *hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.hooks {
		if h == hk {
			s.hooks = append(s.hooks[:i], s.hooks[i+1:]...)
			return
		}
	}
}

// pendingHooks returns the registered hooks that have not run yet on this
// connection, in phase then registration order. If none are left it marks
// the connection live and Ready under the same lock, so that a hook added
// concurrently either sees the live connection or is picked up here.
func (s *Supervisor) pendingHooks(ran map[uint64]bool, c *amqp.Connection) []*hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var todo []*hook
	for _, h := range s.hooks {
		if !ran[h.seq] {
			todo = append(todo, h)
		}
	}
	if len(todo) == 0 {
		s.conn = c
		s.connGen++
		return nil
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].Phase < todo[j].Phase })
	return todo
}

// runHooks runs every hook on c until none is left, then publishes c as the
// live connection. The caller moves to Ready afterwards.
func (s *Supervisor) runHooks(ctx context.Context, c *amqp.Connection) (ran map[uint64]bool, err error) {
	ran = make(map[uint64]bool)
	for {
		todo := s.pendingHooks(ran, c)
		if todo == nil {
			return ran, nil
		}
		for _, h := range todo {
			if err := s.callUser("ready hook "+h.Name, func() error { return h.Up(ctx, c) }); err != nil {
				return ran, fmt.Errorf("%w: %s: %w", ErrHookFailed, h.Name, err)
			}
			ran[h.seq] = true
		}
	}
}

// hooksDown tells the hooks that ran on the lost connection, in reverse order.
func (s *Supervisor) hooksDown(ran map[uint64]bool, reason error) {
	s.mu.Lock()
	var down []*hook
	for i := len(s.hooks) - 1; i >= 0; i-- {
		if h := s.hooks[i]; ran[h.seq] && h.Down != nil {
			down = append(down, h)
		}
	}
	s.mu.Unlock()
	for _, h := range down {
		_ = s.callUser("hook down "+h.Name, func() error { h.Down(reason); return nil })
	}
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
			errs = append(errs, fmt.Errorf("close %s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}
