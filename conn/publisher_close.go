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
// also returns ctx's error, and the goroutine ends with the connection.
//
// Close is idempotent: every call, concurrent or later, returns the first
// call's result, waiting for it bounded by its own ctx. Supervisor.Close
// closes every publisher the same way before it closes the connection,
// leaving part of its context (a quarter, at most 100ms) for the steps
// after; a publisher the user closed first is not reported twice.
func (p *Publisher) Close(ctx context.Context) error {
	return p.shutdown(ctx, false)
}

// hookClose is the ready hook's Close, called by Supervisor.Close before the
// connection closes.
func (p *Publisher) hookClose(ctx context.Context) error {
	// A Close of the user's may be waiting for a reconnection that will
	// not come: tell it.
	p.supOnce.Do(func() { close(p.supClosing) })
	return p.shutdown(ctx, true)
}

func (p *Publisher) shutdown(ctx context.Context, bySupervisor bool) error {
	first := false
	p.closeOnce.Do(func() { first = true })
	if !first {
		if bySupervisor {
			var cancel context.CancelFunc
			ctx, cancel = pubWithMargin(ctx)
			defer cancel()
		}
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

func (p *Publisher) doShutdown(ctx context.Context, bySupervisor bool) error {
	p.mu.Lock()
	p.draining = true
	close(p.closing)
	p.checkDrainedLocked()
	p.mu.Unlock()

	waitCtx := ctx
	if bySupervisor {
		// Leave the supervisor part of ctx to close the connection and
		// return this report, rather than its own deadline error.
		var cancel context.CancelFunc
		waitCtx, cancel = pubWithMargin(ctx)
		defer cancel()
	}
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
		case <-waitCtx.Done():
			waiting = false
		case <-supClosing:
			supClosing = nil
			p.mu.Lock()
			pc := p.cur
			p.mu.Unlock()
			if pc == nil {
				waiting = false
			} else {
				gone = pc.ended
			}
		}
	}

	var errs []error
	pc, lost := p.harvest()
	if len(lost) > 0 {
		ids := make([]string, len(lost))
		for i, c := range lost {
			ids[i] = c.msg.MessageId
			c.settle(ErrUnconfirmed)
		}
		errs = append(errs, &UnconfirmedError{MessageIDs: ids})
	}
	if bySupervisor {
		// The supervisor closes the connection next, which ends the
		// goroutines; Down waits for them. The hook stays registered
		// until then so that Down is called.
		return errors.Join(errs...)
	}
	if pc != nil {
		p.mu.Lock()
		p.startedLocked(1)
		p.mu.Unlock()
		go func() {
			defer p.exited()
			// Bounded by the broker's answer or the connection's end; Close
			// itself waits only as long as ctx allows.
			_ = pc.ch.Close()
		}()
	}
	select {
	case <-p.idle:
		p.remove()
	case <-ctx.Done():
		// A goroutine is stuck on the broker (a channel close or a write
		// the broker does not read). It ends with the connection; the hook
		// stays registered so that Down waits for it.
		errs = append(errs, fmt.Errorf("warren: publisher %s: close: %w", p.opts.Name, ctx.Err()))
	}
	return errors.Join(errs...)
}

// harvest shuts the publisher: it takes every unsettled message out of the
// publisher's structures, in publish order, and ends its context. It returns
// the channel that was live, if any.
func (p *Publisher) harvest() (*publisherChannel, []*Confirmation) {
	p.mu.Lock()
	p.shut = true
	lost := make([]*Confirmation, 0, p.inflight)
	for _, c := range p.retry {
		c.inRetry = false
		if c.stopExpire != nil {
			c.stopExpire()
			c.stopExpire = nil
		}
		lost = append(lost, c)
	}
	p.retry = nil
	pc := p.cur
	if pc != nil {
		lost = pc.pending.drain(lost)
		lost = pc.queue.drain(lost)
	}
	p.inflight -= len(lost)
	p.checkIdleLocked()
	p.mu.Unlock()
	p.cancel()
	pubSortBySeq(lost)
	return pc, lost
}

// down is the ready hook's Down: the connection the channel lived on is gone.
// The watcher learns it from the channel itself; down only stops a reopen in
// progress and, once the publisher is closed, waits for its goroutines, which
// end at once with the connection.
func (p *Publisher) down(error) {
	p.mu.Lock()
	if p.connCancel != nil {
		p.connCancel()
		p.connCancel = nil
	}
	shut := p.shut
	p.mu.Unlock()
	if !shut {
		return
	}
	t := time.NewTimer(p.s.opts.CloseTimeout)
	defer t.Stop()
	select {
	case <-p.idle:
	case <-t.C:
		p.s.log.Warn("warren: publisher goroutines did not exit", "publisher", p.opts.Name)
	}
}

// pubCloseMargin caps the part of Supervisor.Close's context a publisher leaves
// for the steps after it.
const pubCloseMargin = 100 * time.Millisecond

// pubWithMargin returns ctx shortened by a quarter of its remaining time, at
// most pubCloseMargin.
func pubWithMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(d)/4, pubCloseMargin)
	return context.WithDeadline(ctx, d.Add(-margin))
}
