package conn

import (
	"context"
	"errors"
	"fmt"
)

// Close stops the supervisor: it moves to Closing, stops the reconnect loop
// for good (no connection is opened after Close returns), closes every hook's
// resource, closes the connection, waits for every goroutine it lent to
// publishers and consumers, delivers the Closed event and waits for every
// goroutine of the supervisor to exit. Each step runs even if an earlier one
// fails; the errors are joined.
//
// The first call starts the shutdown and its ctx bounds it; when ctx has no
// deadline, Options.CloseTimeout bounds it instead, so Close always returns.
// When the bound ends, a close handshake still waiting on the broker (a
// blocked connection, a partition) is cut short by closing the socket, and
// messages still unconfirmed fail with ErrUnconfirmed. Every call, concurrent
// or later, waits for the same result, bounded by its own ctx (by
// CloseTimeout when it has no deadline), and returns ctx's error if that ends
// first, joined with the errors the hooks' Close had returned by then (a
// publisher's *UnconfirmedError among them): the steps after the publishers
// (the close handshake, the goroutines' exit) running late never hide which
// messages failed.
//
// Close may be called from warren's own callbacks. From the OnEvent handler
// it waits for the teardown but not for the handler's own return. From a
// hook (Up, Down, Close) or from a consumer handler given its own ctx, it
// starts the shutdown and returns nil at once: the shutdown waits for that
// callback, which must return for it to finish.
func (s *Supervisor) Close(ctx context.Context) error {
	// From a callback the shutdown waits for, ctx is the callback's own
	// (cancelled as the shutdown goes on): CloseTimeout alone bounds it.
	inside := s.loopLane.Load().Current() || s.calledFromHandler(ctx)
	s.closeOnce.Do(func() {
		bound, cancel := boundedContext(ctx, s.opts.CloseTimeout, inside)
		s.mu.Lock()
		s.closeCancel = cancel
		s.mu.Unlock()
		// closeCtx must be set before cancel: run reads it after ctx is done.
		s.closeCtx = bound
		s.setState(Closing, nil)
		s.cancel()
		s.wake() // a parked loop learns of the cancel only this way
	})
	if inside {
		return nil
	}
	wait := s.done
	if s.handlerLane.Load().Current() {
		// Called from the event handler: the dispatcher cannot exit until
		// this handler returns. OnEvent has no context to carry a marker, so
		// the handler's watchdog Lane, which knows its goroutine for stall
		// stacks anyway, tells.
		wait = s.loopDone
	}
	waitCtx, bounded := ctx, false
	if _, ok := ctx.Deadline(); !ok {
		// A little past the teardown's own bound, which ends with the
		// CloseTimeout of the first call.
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, s.opts.CloseTimeout+s.opts.CloseTimeout/10)
		defer cancel()
		bounded = true
	}
	select {
	case <-wait:
		return s.closeErr
	case <-waitCtx.Done():
	}
	// Both may be ready at once (a late wake-up); select picks at random,
	// and a finished teardown's result is the better answer.
	select {
	case <-wait:
		return s.closeErr
	default:
	}
	s.mu.Lock()
	report := s.hooksCloseErr
	s.mu.Unlock()
	if !bounded || ctx.Err() != nil {
		if report == nil {
			return ctx.Err()
		}
		return errors.Join(report, ctx.Err())
	}
	select {
	case <-s.loopDone:
		// Torn down; only the event handler has not returned.
		return errors.Join(s.closeErr, fmt.Errorf("warren: close: the OnEvent handler is still running after CloseTimeout (%v): %w",
			s.opts.CloseTimeout, context.DeadlineExceeded))
	default:
		return errors.Join(report, fmt.Errorf("warren: close: not finished within CloseTimeout (%v): %w", s.opts.CloseTimeout, context.DeadlineExceeded))
	}
}

// calledFromHandler reports a ctx that a consumer handler of s was given:
// the shutdown waits for that handler, so Close must not.
func (s *Supervisor) calledFromHandler(ctx context.Context) bool {
	c := handlerConsumer(ctx)
	return c != nil && c.s == s
}
