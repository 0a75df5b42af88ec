package conn

import "context"

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
// or later, waits for the same result, bounded by its own ctx, and returns
// ctx's error if that ends first. Close may be called from the OnEvent
// handler: it then waits for the connection teardown but not for the
// handler's own return.
func (s *Supervisor) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		bound := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			bound, cancel = context.WithTimeout(ctx, s.opts.CloseTimeout)
			s.mu.Lock()
			s.closeCancel = cancel
			s.mu.Unlock()
		}
		// closeCtx must be set before cancel: run reads it after ctx is done.
		s.closeCtx = bound
		s.setState(Closing, nil)
		s.cancel()
	})
	wait := s.done
	if s.handlerLane.Load().Current() {
		// Called from the event handler: the dispatcher cannot exit until
		// this handler returns. OnEvent has no context to carry a marker, so
		// the handler's watchdog Lane, which knows its goroutine for stall
		// stacks anyway, tells.
		wait = s.loopDone
	}
	select {
	case <-wait:
		return s.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}
