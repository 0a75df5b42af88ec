package conn

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// blockedBuffer is the capacity of the channel amqp091-go sends
// connection.blocked and unblocked on: the notifications the broker can send
// before the connection's first one is taken (see takeBlocked). amqp091-go
// waits up to 5 s for room in a full channel, its reader stalled, and then
// drops the notification; a real broker alternates blocked and unblocked
// seconds apart, so 16 (480 bytes) is far more than one read can carry.
const blockedBuffer = 16

// takeBlocked takes the connection.blocked and unblocked notifications
// waiting in ss.blocks and records each (recordBlocked). It runs on
// amqp091-go's reader goroutine before each socket read, on its heartbeater
// goroutine after each frame read (when the reader hands it the read
// deadline), and on the loop's goroutine, so it never blocks: the log line,
// the events and the BlockedTimeout timer are left to the loop, which it
// wakes.
//
// A connection the broker never blocks keeps no goroutine on ss.blocks
// (BENCHMARKS.md, issue 18). The first notification starts drainBlocked,
// which takes every later one as it is sent: from the reader's side alone,
// a burst larger than the buffer within one read would leave the reader
// waiting to send, nobody taking, and amqp091-go closing the channel under
// that send if the connection shuts down meanwhile (a panic).
func (s *Supervisor) takeBlocked(ss *session) {
	if len(ss.blocks) == 0 {
		return // the read path's common case: no lock
	}
	changed, start := false, false
	ss.blockMu.Lock()
	for !ss.blockEnded && ss.drained == nil {
		var b amqp.Blocking
		var ok bool
		select {
		case b, ok = <-ss.blocks:
		default: // taken by the other caller since the look above
		}
		if !ok { // none left, or closed by amqp091-go: the connection is gone
			break
		}
		changed = s.recordBlocked(ss, b) || changed
		start = true
	}
	if start { // the loop ran under the lock: nothing started a drain meanwhile
		ss.drained = make(chan struct{})
	}
	ss.blockMu.Unlock()
	if start {
		go s.drainBlocked(ss)
	}
	if changed {
		s.blockedNews()
	}
}

// drainBlocked takes ss's blocked notifications as amqp091-go sends them,
// from the first one takeBlocked took until amqp091-go closes the channel
// at the connection's end; the session's end waits for it (waitDrained).
// From its start it is the channel's only reader, so notifications are
// recorded in the order the broker sent them.
func (s *Supervisor) drainBlocked(ss *session) {
	defer close(ss.drained)
	for b := range ss.blocks {
		ss.blockMu.Lock()
		changed := !ss.blockEnded && s.recordBlocked(ss, b)
		ss.blockMu.Unlock()
		if changed {
			s.blockedNews()
		}
	}
}

// blockedNews tells both who wait on a blocked flag that changed: the
// publishers waiting to publish (blockedChanged) and the loop, which logs
// it, reports it and runs the BlockedTimeout timer.
func (s *Supervisor) blockedNews() {
	s.blockedChanged()
	s.wake()
}

// recordBlocked records one notification: the Monitor first (a publish the
// unblock lets through is owed a reply again, and the owed rule must hold
// while the broker reads nothing), then the flag the publishers wait on and
// the count. It reports whether the flag changed. Caller holds ss.blockMu.
func (s *Supervisor) recordBlocked(ss *session, b amqp.Blocking) (changed bool) {
	ss.monitor.SetBlocked(b.Active)
	if b.Active {
		ss.eventMu.Lock()
		ss.reason = b.Reason
		ss.eventMu.Unlock()
	}
	if ss.blocked.Swap(b.Active) == b.Active {
		return false
	}
	if b.Active {
		ss.blockedSince = time.Now()
		s.ctr.blocked.Add(1)
	}
	return true
}

// waitDrained waits for ss's drainBlocked, if one started; amqp091-go has
// closed the channel by then, or is about to.
func (ss *session) waitDrained() {
	ss.blockMu.Lock()
	d := ss.drained
	ss.blockMu.Unlock()
	if d != nil {
		<-d
	}
}

// noteBlockedChange is the loop's part of a block's start or end: the log
// line and the event (once the session was announced, see syncBlocked),
// and the BlockedTimeout timer.
func (s *Supervisor) noteBlockedChange(ss *session) {
	blocked := ss.blocked.Load()
	if blocked != ss.logged {
		ss.logged = blocked
		if blocked {
			ss.eventMu.Lock()
			reason := ss.reason
			ss.eventMu.Unlock()
			s.log.Warn("warren: broker blocked the connection", "reason", reason)
		} else {
			s.log.Info("warren: broker unblocked the connection")
		}
	}
	s.syncBlocked(ss)
	ss.blockMu.Lock()
	since := ss.blockedSince
	ss.blockMu.Unlock()
	ss.syncBlockedTimer(blocked, since, s.opts.BlockedTimeout, s.wake)
}

// syncBlockedTimer runs the BlockedTimeout timer while the session is
// blocked, to expire timeout after the block began, and stops it when the
// block ended. The timer wakes the loop, which then finds blockedExpired.
// Only the loop's goroutine calls it.
func (ss *session) syncBlockedTimer(blocked bool, since time.Time, timeout time.Duration, wake func()) {
	switch {
	case blocked && timeout > 0 && (ss.blockTimer == nil || !since.Equal(ss.blockSince)):
		// A block that ended and began again since the last look (both
		// taken in one go) is a new block: its own deadline.
		ss.stopBlockedTimer()
		ss.blockSince = since
		ss.blockDeadline = since.Add(timeout)
		ss.blockTimer = time.AfterFunc(time.Until(ss.blockDeadline), wake)
	case !blocked && ss.blockTimer != nil:
		ss.stopBlockedTimer()
	}
}

// blockedExpired reports a block that has lasted BlockedTimeout.
func (ss *session) blockedExpired() bool {
	return ss.blockTimer != nil && !time.Now().Before(ss.blockDeadline)
}

// stopBlockedTimer stops the BlockedTimeout timer if it runs.
func (ss *session) stopBlockedTimer() {
	if ss.blockTimer != nil {
		ss.blockTimer.Stop()
		ss.blockTimer = nil
	}
}
