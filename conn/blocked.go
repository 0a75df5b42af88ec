package conn

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// blockedBuffer is the capacity of the channel amqp091-go sends
// connection.blocked and unblocked on. amqp091-go's reader sends on it and
// the same reader takes from it before its next socket read (takeBlocked,
// through the Monitor's SetBeforeRead), so it holds only the notifications
// of one read; the broker alternates blocked and unblocked, so a handful is
// plenty. Were it ever full, amqp091-go would wait up to 5 s for room.
const blockedBuffer = 4

// takeBlocked takes the connection.blocked and unblocked notifications
// waiting in ss.blocks and records each: the Monitor first (a publish the
// unblock lets through is owed a reply again, and the owed rule must hold
// while the broker reads nothing), then the flag the publishers wait on and
// the count. It runs on amqp091-go's reader goroutine before each socket
// read, and on the loop's goroutine, so it never blocks: the log line, the
// events and the BlockedTimeout timer are left to the loop, which it wakes.
// No goroutine waits on ss.blocks for the life of the connection
// (BENCHMARKS.md, issue 18).
func (s *Supervisor) takeBlocked(ss *session) {
	if len(ss.blocks) == 0 {
		return // the read path's common case: no lock
	}
	changed := false
	ss.blockMu.Lock()
	for !ss.blockEnded {
		var b amqp.Blocking
		var ok bool
		select {
		case b, ok = <-ss.blocks:
		default: // taken by the other caller since the look above
		}
		if !ok { // none left, or closed by amqp091-go: the connection is gone
			break
		}
		ss.monitor.SetBlocked(b.Active)
		if b.Active {
			ss.eventMu.Lock()
			ss.reason = b.Reason
			ss.eventMu.Unlock()
		}
		if ss.blocked.Swap(b.Active) != b.Active {
			changed = true
			if b.Active {
				ss.blockedSince = time.Now()
				s.ctr.blocked.Add(1)
			}
		}
	}
	ss.blockMu.Unlock()
	if changed {
		s.blockedChanged()
		s.wake()
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
