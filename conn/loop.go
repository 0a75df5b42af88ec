package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
	"github.com/warrenmq/warren/reconnect"
)

// run starts the reconnect loop on the goroutine New starts. The loop is
// the only owner of the connection and of the reconnect schedule (which is
// not safe for concurrent use); it runs on one goroutine at a time, which
// exits while a Ready connection has nothing to do (see park.go).
func (s *Supervisor) run() {
	// The lane knows this goroutine, so that Close and AddHook called from a
	// hook running here do not wait for the goroutine that runs them.
	s.loopLane.Store(s.watchdog.Lane())
	// The policy was validated by New, so NewSchedule cannot fail here.
	sched, err := reconnect.NewSchedule(s.opts.Reconnect, nil)
	if err != nil {
		s.fail(err)
		s.finish()
		return
	}
	st := &s.loop
	st.sched = sched
	st.order = newURLOrder(len(s.opts.URLs), !s.opts.KeepURLOrder)
	st.delay, st.err = sched.Next()
	s.drive()
}

// drive runs the loop until it parks or ends, and finishes the supervisor
// when it ended.
func (s *Supervisor) drive() {
	if s.runLoop() {
		s.finish()
	}
}

// runLoop is the reconnect loop: it dials, watches the Ready connection,
// and reconnects after a loss, until Close or a permanent failure (it
// returns true) or until the Ready connection has nothing left to do (it
// returns false: the loop parked, and wake resumes it).
func (s *Supervisor) runLoop() (ended bool) {
	st := &s.loop
	for {
		if ss := st.ss; ss != nil {
			switch s.watch(ss) {
			case watchParked:
				return false
			case watchClosing:
				st.ss = nil
				s.closeErr = s.teardown(ss)
				return true
			}
			st.ss = nil // lost
			st.sched.Lost()
			st.delay, st.err = st.sched.Next()
		}
		if st.err != nil {
			s.gaveUp(st.err)
			return true
		}
		if reconnect.Wait(s.ctx, st.delay, nil) != nil {
			s.closeErr = s.teardown(nil)
			return true
		}
		ss, lastURL, permanent, lastErr := s.round(st.order)
		if s.ctx.Err() != nil {
			s.closeErr = s.teardown(ss)
			return true
		}
		if permanent {
			if !droppedAtLogin(lastErr) || st.dropped > 0 {
				s.fail(lastErr)
				return true
			}
			st.dropped++ // one more round before believing it
		} else {
			st.dropped = 0
		}
		if ss != nil {
			st.sched.Connected()
			s.ready(ss)
			st.ss = ss
			continue
		}
		st.delay, st.err = s.roundFailed(st.sched, lastURL, lastErr)
	}
}

// gaveUp stops the supervisor once the policy gave up (MaxAttempts or
// MaxElapsed), keeping the cause.
func (s *Supervisor) gaveUp(err error) {
	s.fail(chain(fmt.Errorf("warren: stopped reconnecting: %w", err), s.Err()))
}

// roundFailed returns the delay before the next round after a round that
// connected to no URL, and reports the round's last failure with it.
func (s *Supervisor) roundFailed(sched *reconnect.Schedule, lastURL int, lastErr error) (time.Duration, error) {
	delay, err := sched.Next()
	s.emit(Event{Kind: EventDialFailed, Err: lastErr, URL: s.redacted[lastURL],
		Attempt: sched.Attempt(), Delay: delay})
	return delay, err
}

// droppedAtLogin reports amqp091-go's ErrCredentials sentinel: the broker
// closed the socket after start-ok without a word. RabbitMQ does that for
// bad credentials (amqp091-go does not advertise
// authentication_failure_close, which would make it say so), but a network
// that resets the connection at that moment looks the same; so the
// supervisor believes it only when the next round ends the same way.
func droppedAtLogin(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae == amqp.ErrCredentials
}

// round dials every URL once, in order's sequence, and returns the first
// session whose ready hooks all succeeded. Every URL dialed moves to the back
// of the order, so after a loss the next round starts with a node other than
// the one just lost, and a node that refused waits until the others have
// failed too. permanent reports that every URL of the round failed with a
// permanent error: one node alone refusing (a cluster node shutting down
// answers 403 for a moment) must not stop a supervisor that has other nodes
// to try. lastURL is the last URL tried.
func (s *Supervisor) round(order *urlOrder) (ss *session, lastURL int, permanent bool, lastErr error) {
	n := len(s.opts.URLs)
	permanent = !s.opts.RetryPermanent
	for k := 0; k < n; k++ {
		i := order.front()
		order.toBack(i)
		ss, err := s.connect(i)
		if err == nil {
			return ss, i, false, nil
		}
		lastURL, lastErr = i, err
		if s.ctx.Err() != nil {
			return nil, i, false, err
		}
		s.ctr.failedDials.Add(1)
		s.streak.Add(1)
		s.setErr(err)
		class, reason := reconnect.Classify(err)
		s.log.Warn("warren: dial failed", "url", s.redacted[i], "err", err, "class", class.String(), "reason", reason)
		if class != reconnect.Permanent {
			permanent = false
		}
		if k < n-1 { // the last failure of a round is reported with the backoff delay
			s.emit(Event{Kind: EventDialFailed, Err: err, URL: s.redacted[i]})
		}
	}
	return nil, lastURL, permanent, lastErr
}

// connect dials URL i and runs the ready hooks on the new connection. A
// hook that fails abandons the session after the hooks that ran on it got
// their Down.
func (s *Supervisor) connect(i int) (*session, error) {
	ss, err := s.dial(s.ctx, i)
	if err != nil {
		return nil, err
	}
	if err := s.runHooks(ss); err != nil {
		if s.ctx.Err() == nil { // a Close cutting the hooks short is no hook failure
			s.ctr.hookFailures.Add(1)
			s.emit(Event{Kind: EventHookFailed, Err: err, URL: s.redacted[i]})
		}
		s.end(ss, err)
		return nil, err
	}
	return ss, nil
}

// ready counts, records and announces a session that became Ready.
func (s *Supervisor) ready(ss *session) {
	if s.ctr.connections.Add(1) > 1 {
		s.ctr.reconnects.Add(1)
	}
	s.streak.Store(0)
	s.setState(Ready, nil)
	s.log.Info("warren: connected", "url", s.redacted[ss.url])
	s.emit(Event{Kind: EventConnected, URL: s.redacted[ss.url]})
	s.announce(ss)
}

// closedReason names why amqp091-go closed ss's connection.
func (s *Supervisor) closedReason(ss *session, amqpErr *amqp.Error, ok bool) error {
	var reason error = ErrConnectionLost
	if ok && amqpErr != nil {
		reason = amqpErr
	}
	// A dead peer closes the socket, which amqp091-go reports as a frame
	// error; name the real cause.
	if err := ss.monitor.Err(); err != nil {
		reason = s.deadPeer(ss, err)
	}
	return reason
}

// blockedTooLong reports a connection blocked for longer than BlockedTimeout
// and returns the reason to close it.
func (s *Supervisor) blockedTooLong(ss *session) error {
	s.ctr.blockedTimeouts.Add(1)
	reason := fmt.Errorf("%w (%v)", ErrBlockedTimeout, s.opts.BlockedTimeout)
	s.log.Warn("warren: closing a connection blocked too long", "blocked_timeout", s.opts.BlockedTimeout)
	s.emit(Event{Kind: EventBlockedTimeout, Err: reason, URL: s.redacted[ss.url]})
	return reason
}

func (s *Supervisor) deadPeer(ss *session, err error) error {
	var dp *heartbeat.DeadPeerError
	if errors.As(err, &dp) {
		s.log.Warn("warren: dead peer", "url", s.redacted[ss.url], "silence", dp.Silence)
	}
	s.ctr.deadPeers.Add(1)
	s.emit(Event{Kind: EventDeadPeer, Err: err, URL: s.redacted[ss.url]})
	return err
}

// lose handles the end of a ready session other than by Close.
func (s *Supervisor) lose(ss *session, reason error) {
	s.ctr.lost.Add(1)
	err := fmt.Errorf("warren: connection to %s lost: %w", s.redacted[ss.url], reason)
	s.mu.Lock()
	s.live.Store(nil)
	s.mu.Unlock()
	// The loss is reported before the state change it causes, stamped with
	// the state it leaves the supervisor in.
	s.emitIn(Reconnecting, Event{Kind: EventConnectionLost, Err: err, URL: s.redacted[ss.url]})
	s.setState(Reconnecting, err)
	// AddHook calls still waiting run their hooks on the next connection.
	s.settleWaiters(nil)
	s.end(ss, err)
}

// end drops a session that is no longer live: its connection is closed at
// once (it is dead, or abandoned after a failed hook), the hooks that ran on
// it get their Down, and a blocked flag it carried is reported lifted, since
// the next connection starts unblocked.
func (s *Supervisor) end(ss *session, reason error) {
	ss.stopBlockedTimer()
	ss.abandon()
	s.hooksDown(ss, reason)
	s.reportUnblocked(ss)
}

// reportUnblocked reports the end of a block that ended with its session,
// whose flag no longer changes from here (see takeBlocked).
func (s *Supervisor) reportUnblocked(ss *session) {
	ss.blockMu.Lock()
	ss.blockEnded = true
	changed := ss.blocked.Swap(false)
	ss.blockMu.Unlock()
	if changed {
		s.blockedChanged()
	}
	s.syncBlocked(ss)
}

func (s *Supervisor) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// fail stops the supervisor after a permanent error or after the reconnect
// policy gave up.
func (s *Supervisor) fail(err error) {
	s.log.Error("warren: giving up", "err", err)
	s.setErr(err)
	// Closing first: from here AddHook refuses, so no hook registers after
	// closeHooks and is never closed.
	s.setState(Closing, err)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	s.closeErr = s.teardownWith(ctx, nil)
	s.setState(Closed, err)
}

// finish runs last on the loop's goroutine: it marks the supervisor Closed,
// releases Close callers, and lets the dispatcher deliver what is queued.
func (s *Supervisor) finish() {
	s.setState(Closed, nil)
	s.cancel()
	s.mu.Lock()
	if s.closeCancel != nil {
		s.closeCancel() // releases the CloseTimeout timer; teardown is over
	}
	s.mu.Unlock()
	close(s.loopDone)
	s.events.close()
	<-s.events.done
	close(s.done)
}

// teardown runs every shutdown step even when an earlier one fails, and joins
// their errors. ss is the live session, or nil.
func (s *Supervisor) teardown(ss *session) error {
	return s.teardownWith(s.closeCtx, ss)
}

func (s *Supervisor) teardownWith(ctx context.Context, ss *session) error {
	deadline := time.Now().Add(s.opts.CloseTimeout)
	if d, ok := ctx.Deadline(); ok {
		// Cut the close handshake short a little before the caller's
		// deadline, so that Close can still return the teardown's result
		// (unconfirmed messages included) rather than only ctx's error.
		if d = d.Add(-closeMargin(time.Until(d))); d.Before(deadline) {
			deadline = d
		}
	}
	var errs []error
	// AddHook calls still waiting get ErrClosed: nothing will run their hooks.
	s.settleWaiters(ErrClosed)
	// Hook resources first, while their channels still work: a publisher
	// waits here for outstanding confirms.
	if err := s.closeHooks(ctx); err != nil {
		errs = append(errs, err)
	}
	if ss != nil {
		s.mu.Lock()
		s.live.Store(nil)
		s.mu.Unlock()
		if err := ss.shutdown(ctx, deadline); err != nil && !isClosedErr(err) {
			errs = append(errs, fmt.Errorf("warren: close connection to %s: %w", s.redacted[ss.url], err))
		}
		ss.stopBlockedTimer()
		s.hooksDown(ss, ErrClosed)
		s.reportUnblocked(ss)
	}
	// Every goroutine lent to a publisher or consumer ends with its channel
	// or its connection; wait for them rather than trust Down to, until the
	// same cut as the handshake, so that Close still returns this report.
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := s.work.Wait(wctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// closeMargin is the part of the time left that teardown keeps for itself
// after cutting the close handshake: a tenth, at most 50ms.
func closeMargin(left time.Duration) time.Duration {
	return min(left/10, 50*time.Millisecond)
}

// isClosedErr reports errors that only say the connection was already gone:
// closed by amqp091-go after the peer dropped it (a write then fails with
// net.ErrClosed), reset, or cut by a frame error.
func isClosedErr(err error) bool {
	var ae *amqp.Error
	return errors.Is(err, amqp.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || (errors.As(err, &ae) && ae.Code == amqp.FrameError)
}
