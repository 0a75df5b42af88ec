package conn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Close stops the publisher: new publishes fail with ErrClosed at once, and
// Close waits, bounded by ctx, until every accepted message has settled
// (including messages waiting for a connection to be republished, unless the
// supervisor has stopped for good). Whatever is still unsettled then fails
// with ErrUnconfirmed on its Confirmation, and Close returns an
// *UnconfirmedError listing their ids: nothing is dropped silently. Then it
// closes the channel and waits, still bounded by ctx, for the publisher's
// goroutines to exit; if one is stuck on a broker that does not answer, Close
// also returns ctx's error, and the goroutine ends with the connection. A ctx
// without a deadline is bounded by the supervisor's Options.CloseTimeout.
//
// Close is idempotent: every call, concurrent or later, returns the first
// call's result, waiting for it bounded by its own ctx. Supervisor.Close
// closes every publisher the same way before it closes the connection,
// leaving part of its context (a quarter, at most 100ms) for the steps
// after; a publisher the user closed first is not reported twice.
func (p *Publisher) Close(ctx context.Context) error {
	return p.shutdown(ctx, false)
}

// hookClose is the hook's Close, called by Supervisor.Close before the
// connection closes.
func (p *Publisher) hookClose(ctx context.Context) error {
	// A Close of the user's may be waiting for a reconnection that will
	// not come: tell it.
	p.supOnce.Do(func() { close(p.supClosing) })
	return p.shutdown(ctx, true)
}

func (p *Publisher) shutdown(ctx context.Context, bySupervisor bool) error {
	ctx, cancel := p.closeBound(ctx, bySupervisor)
	defer cancel()
	first := false
	p.closeOnce.Do(func() { first = true })
	if !first {
		select {
		case <-p.closed:
			if bySupervisor && p.closedByUser {
				return nil // the user was told already
			}
			return p.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.closedByUser = !bySupervisor
	p.closeErr = p.doShutdown(ctx, bySupervisor)
	close(p.closed)
	return p.closeErr
}

// closeBound bounds a Close: by CloseTimeout when ctx has no deadline, and
// for Supervisor.Close by a little less than ctx, leaving the supervisor the
// rest to close the connection and return this report rather than its own
// deadline error.
func (p *Publisher) closeBound(ctx context.Context, bySupervisor bool) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, p.s.opts.CloseTimeout)
	}
	if !bySupervisor {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(d)/4, pubCloseMargin)
	return context.WithDeadline(ctx, d.Add(-margin))
}

// pubCloseMargin caps the part of Supervisor.Close's context a publisher leaves
// for the steps after it.
const pubCloseMargin = 100 * time.Millisecond

func (p *Publisher) doShutdown(ctx context.Context, bySupervisor bool) error {
	p.mu.Lock()
	p.draining = true
	close(p.closing)
	if p.led.unsettled() == 0 {
		close(p.drained)
	}
	p.mu.Unlock()

	// Wait for the outstanding messages to settle. Once the supervisor is
	// closing no connection will come back: when the channel is gone too
	// there is nothing left to wait for.
	supClosing := p.supClosing
	var gone <-chan struct{}
	for waiting := true; waiting; {
		select {
		case <-p.drained:
			waiting = false
		case <-gone:
			waiting = false
		case <-p.s.Done(): // stopped for good
			waiting = false
		case <-ctx.Done():
			waiting = false
		case <-supClosing:
			supClosing = nil
			p.mu.Lock()
			if pc := p.cur; pc == nil {
				waiting = false
			} else {
				gone = pc.ctx.Done()
			}
			p.mu.Unlock()
		}
	}

	var errs []error
	pc, lost := p.takeUnsettled()
	if len(lost) > 0 {
		errs = append(errs, &UnconfirmedError{MessageIDs: lost})
	}
	p.remove()
	if bySupervisor {
		// The supervisor closes the connection next, which ends the
		// goroutines, and waits for them.
		return errors.Join(errs...)
	}
	if pc != nil {
		// Bounded by the broker's answer or the connection's end; Close
		// itself waits only as long as ctx allows.
		p.goWork(func() { _ = pc.ch.Close() })
	}
	if err := p.work.Wait(ctx); err != nil {
		// A goroutine is stuck on the broker (a channel close or a write
		// the broker does not read). It ends with the connection, and
		// Supervisor.Close waits for it.
		errs = append(errs, fmt.Errorf("warren: publisher %s: close: %w", p.opts.Name, err))
	}
	return errors.Join(errs...)
}
