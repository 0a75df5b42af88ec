package conn

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// blockedBuffer is the capacity of the channel amqp091-go sends
// connection.blocked and unblocked on. Someone always takes from it while
// the connection is open (serve, or drainAside while the run goroutine is
// busy), so it only has to hold the notifications that arrive in the moment
// the job passes between the two; the broker alternates blocked and
// unblocked, so a handful is plenty.
const blockedBuffer = 4

// noteBlocked records a connection.blocked or unblocked notification on ss:
// the Monitor first (a publish the unblock lets through is owed a reply
// again), then the flag the publishers wait on, the counters, the log and
// the events. It runs on whichever goroutine takes ss.blocks at the time,
// one at a time.
func (s *Supervisor) noteBlocked(ss *session, b amqp.Blocking) {
	ss.monitor.SetBlocked(b.Active)
	if b.Active {
		ss.eventMu.Lock()
		ss.reason = b.Reason
		ss.eventMu.Unlock()
	}
	if ss.blocked.Swap(b.Active) == b.Active {
		return
	}
	s.blockedChanged()
	if b.Active {
		ss.blockedSince = time.Now()
		s.ctr.blocked.Add(1)
		s.log.Warn("warren: broker blocked the connection", "reason", b.Reason)
	} else {
		s.log.Info("warren: broker unblocked the connection")
	}
	s.syncBlocked(ss)
}

// drainAside takes ss's blocked notifications on a goroutine of its own
// while the run goroutine does something other than wait in serve (dial,
// run hooks, tear down), so that the Monitor learns of a block at once and
// amqp091-go's reader never waits on the run goroutine. stop ends it and
// waits for it, after which the caller may take ss.blocks itself. A
// connection spends its life in serve, so this goroutine lives only while
// hooks run, not for the life of every connection (BENCHMARKS.md, issue 18).
func (s *Supervisor) drainAside(ss *session) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case b, ok := <-ss.blocks:
				if !ok { // amqp091-go closed it: the connection is gone
					return
				}
				s.noteBlocked(ss, b)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
