package conn

import (
	"time"

	"github.com/warrenmq/warren/heartbeat"
	"github.com/warrenmq/warren/reconnect"
)

// The reconnect loop keeps no goroutine parked while a connection is Ready.
// A Ready connection waits on five things: Close, a hook AddHook posts, the
// connection's end (closed by the broker, reset, or a dead-peer verdict), a
// connection.blocked notification, and the BlockedTimeout timer. Each of
// them calls wake (Close and AddHook after posting, the Monitor's
// SetOnClose when the socket closes, takeBlocked, the timer's AfterFunc),
// and the loop looks at all five (watch). When it finds nothing to do it
// parks: its goroutine exits, and the next wake starts a fresh one.
//
// Why: a goroutine parked for the life of every connection kept a 4 KiB
// stack (dialing and hooks grow it; the runtime shrinks a parked stack only
// below a quarter in use), a quarter of a fleet client's memory beyond raw
// amqp091-go's (BENCHMARKS.md, issue 18). One goroutine at a time still
// runs the loop, so hooks keep their contract: Ups and Downs never overlap,
// and loopLane names the goroutine that runs them.

// loopState is the reconnect loop's state across parks. Only the goroutine
// that runs the loop touches it.
type loopState struct {
	sched   *reconnect.Schedule
	order   *urlOrder
	delay   time.Duration // before the next round
	err     error         // the schedule gave up
	dropped int           // rounds in a row dropped at login (droppedAtLogin)
	ss      *session      // the Ready session, nil while reconnecting
}

// watchResult is what watch found.
type watchResult int

const (
	watchParked  watchResult = iota // nothing to do: the loop parked
	watchClosing                    // Close was called
	watchLost                       // the connection ended; lose ran
)

// wake makes the loop look at its Ready connection again: it starts a
// goroutine for the loop if the loop is parked, and otherwise makes the
// running loop look once more before it parks. It never blocks.
func (s *Supervisor) wake() {
	if s.wakes.Add(1) == 1 {
		go s.resume()
	}
}

// resume runs the loop on a fresh goroutine after a park.
func (s *Supervisor) resume() {
	s.loopLane.Store(s.watchdog.Lane())
	s.drive()
}

// watch looks at everything ss waits on and acts on what happened, until
// nothing is left: then it parks the loop, unless a wake arrived meanwhile.
// wakes counts the wakes since the loop last parked, plus one for the
// goroutine running it, so it is never 0 while the loop runs and a wake
// that comes while watch looks makes the swap below fail.
func (s *Supervisor) watch(ss *session) watchResult {
	for {
		seen := s.wakes.Load()
		if s.ctx.Err() != nil {
			return watchClosing
		}
		if reason := s.ended(ss); reason != nil {
			s.lose(ss, reason)
			return watchLost
		}
		select {
		case <-s.hookKick:
			s.runAdded(ss)
			continue
		default:
		}
		s.takeBlocked(ss) // any amqp091-go's reader has not taken yet
		s.noteBlockedChange(ss)
		if ss.blockedExpired() {
			s.lose(ss, s.blockedTooLong(ss))
			return watchLost
		}
		if s.wakes.CompareAndSwap(seen, 0) {
			return watchParked
		}
	}
}

// ended returns why ss's connection ended, or nil while it is open.
func (s *Supervisor) ended(ss *session) error {
	select {
	case amqpErr, ok := <-ss.closed:
		return s.closedReason(ss, amqpErr, ok)
	case <-ss.monitor.Dead():
		return s.deadPeer(ss, ss.monitor.Err())
	default:
	}
	if !ss.monitor.Closed() {
		return nil
	}
	// The socket closed but amqp091-go has not reported yet (it reports
	// before it closes the socket, so this should not happen): wait for it,
	// briefly, for the broker's reason.
	t := time.NewTimer(readerShutdownWait)
	defer t.Stop()
	select {
	case amqpErr, ok := <-ss.closed:
		return s.closedReason(ss, amqpErr, ok)
	case <-ss.monitor.Dead():
		return s.deadPeer(ss, ss.monitor.Err())
	case <-t.C:
		return ErrConnectionLost
	}
}

// watchSession arranges for ss's end and its blocked notifications to wake
// the loop; dial calls it before the session can be seen.
func (s *Supervisor) watchSession(ss *session, m *heartbeat.Monitor) {
	m.SetOnClose(s.wake)
	take := func() { s.takeBlocked(ss) }
	m.SetBeforeRead(take)
	// amqp091-go's heartbeater sets the read deadline after each frame the
	// reader dispatched: the first notification of a burst is taken (and
	// the drain started) there, before the burst can fill ss.blocks and
	// leave the reader waiting 5 s with nobody taking (attack7).
	m.SetOnReadDeadline(take)
}
