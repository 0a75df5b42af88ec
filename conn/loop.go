package conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
	"github.com/warrenmq/warren/reconnect"
)

// run is the supervisor's goroutine: the only owner of the connection and of
// the reconnect schedule (which is not safe for concurrent use).
func (s *Supervisor) run() {
	defer s.finish()
	// The policy was validated by New, so NewSchedule cannot fail here.
	sched, err := reconnect.NewSchedule(s.opts.Reconnect, nil)
	if err != nil {
		s.fail(err)
		return
	}
	order := newURLOrder(len(s.opts.URLs), s.opts.ShuffleURLs)
	delay, err := sched.Next()
	for {
		if err != nil {
			// The policy gave up (MaxAttempts or MaxElapsed): keep the cause.
			if last := s.Err(); last != nil {
				err = fmt.Errorf("%w; last error: %w", err, last)
			}
			s.fail(fmt.Errorf("warren: %w", err))
			return
		}
		if reconnect.Wait(s.ctx, delay, nil) != nil {
			s.closeErr = s.teardown(nil)
			return
		}
		ss, lastURL, permanent, lastErr := s.round(order)
		if s.ctx.Err() != nil {
			s.closeErr = s.teardown(ss)
			return
		}
		if permanent {
			s.fail(lastErr)
			return
		}
		if ss != nil {
			sched.Connected()
			if closing := s.serve(ss); closing {
				s.closeErr = s.teardown(ss)
				return
			}
			sched.Lost()
			delay, err = sched.Next()
			continue
		}
		delay, err = sched.Next()
		s.emit(Event{Kind: EventDialFailed, Err: lastErr, URL: s.redacted[lastURL],
			Attempt: sched.Attempt(), Delay: delay})
	}
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

// connect dials URL i and runs the ready hooks on the new connection.
func (s *Supervisor) connect(i int) (*session, error) {
	ss, err := s.dial(s.ctx, i)
	if err != nil {
		return nil, err
	}
	ran, err := s.runHooks(s.ctx, ss.conn)
	if err != nil {
		s.ctr.hookFailures.Add(1)
		s.emit(Event{Kind: EventHookFailed, Err: err, URL: s.redacted[i]})
		s.hooksDown(ran, err)
		ss.abandon()
		return nil, err
	}
	ss.ran = ran
	return ss, nil
}

// serve watches a ready session until it is lost (returns false) or Close is
// called (returns true).
func (s *Supervisor) serve(ss *session) (closing bool) {
	if s.ctr.connections.Add(1) > 1 {
		s.ctr.reconnects.Add(1)
	}
	s.setState(Ready, nil)
	s.log.Info("warren: connected", "url", s.redacted[ss.url])
	s.emit(Event{Kind: EventConnected, URL: s.redacted[ss.url]})

	var blockedTimer *time.Timer
	var blockedExpired <-chan time.Time
	defer func() {
		if blockedTimer != nil {
			blockedTimer.Stop()
		}
	}()

	var reason error
	for reason == nil {
		select {
		case <-s.ctx.Done():
			return true
		case amqpErr, ok := <-ss.closed:
			reason = ErrConnectionLost
			if ok && amqpErr != nil {
				reason = amqpErr
			}
			// A dead peer closes the socket, which amqp091-go reports as a
			// frame error; name the real cause.
			if err := ss.monitor.Err(); err != nil {
				reason = s.deadPeer(ss, err)
			}
		case <-ss.monitor.Dead():
			reason = s.deadPeer(ss, ss.monitor.Err())
		case b := <-ss.blocked:
			switch {
			case b.Active && s.opts.BlockedTimeout > 0 && blockedTimer == nil:
				blockedTimer = time.NewTimer(s.opts.BlockedTimeout)
				blockedExpired = blockedTimer.C
			case !b.Active && blockedTimer != nil:
				blockedTimer.Stop()
				blockedTimer, blockedExpired = nil, nil
			}
		case <-blockedExpired:
			s.ctr.blockedTimeouts.Add(1)
			reason = fmt.Errorf("%w (%v)", ErrBlockedTimeout, s.opts.BlockedTimeout)
			s.log.Warn("warren: closing a connection blocked too long", "blocked_timeout", s.opts.BlockedTimeout)
			s.emit(Event{Kind: EventBlockedTimeout, Err: reason, URL: s.redacted[ss.url]})
		}
	}

	s.lose(ss, reason)
	return false
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
	s.mu.Lock()
	s.conn = nil
	s.mu.Unlock()
	s.ctr.lost.Add(1)
	err := fmt.Errorf("warren: connection to %s lost: %w", s.redacted[ss.url], reason)
	s.emit(Event{Kind: EventConnectionLost, Err: err, URL: s.redacted[ss.url]})
	s.setState(Reconnecting, err)
	ss.abandon()
	s.clearBlocked()
	s.hooksDown(ss.ran, err)
}

func (s *Supervisor) clearBlocked() {
	if s.setBlocked(false) {
		s.emit(Event{Kind: EventUnblocked})
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	s.closeErr = s.teardownWith(ctx, nil)
	s.setState(Closed, err)
}

// finish runs last on the run goroutine: it marks the supervisor Closed,
// releases Close callers, and lets the dispatcher deliver what is queued.
func (s *Supervisor) finish() {
	s.setState(Closed, nil)
	s.cancel()
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
	// Hook resources first, while their channels still work: a publisher
	// waits here for outstanding confirms.
	if err := s.closeHooks(ctx); err != nil {
		errs = append(errs, err)
	}
	if ss != nil {
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		if err := ss.shutdown(ctx, deadline); err != nil && !isClosedErr(err) {
			errs = append(errs, fmt.Errorf("warren: close connection to %s: %w", s.redacted[ss.url], err))
		}
		s.hooksDown(ss.ran, ErrClosed)
	}
	s.clearBlocked()
	// The goroutines lent to publishers and consumers end with the
	// connection; wait for them, bounded.
	wctx, cancel := context.WithTimeout(ctx, s.opts.CloseTimeout)
	_ = s.work.Wait(wctx)
	cancel()
	return errors.Join(errs...)
}

// closeMargin is the part of the time left that teardown keeps for itself
// after cutting the close handshake: a tenth, at most 50ms.
func closeMargin(left time.Duration) time.Duration {
	return min(left/10, 50*time.Millisecond)
}

// isClosedErr reports errors that only say the connection was already gone.
func isClosedErr(err error) bool {
	var ae *amqp.Error
	return errors.Is(err, amqp.ErrClosed) || (errors.As(err, &ae) && ae.Code == amqp.FrameError)
}
