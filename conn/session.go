package conn

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// session is everything that belongs to one connection: the amqp091-go
// connection, the Monitor that watches its socket, its notification channels,
// the broker's blocked flag for it, and the hooks whose Up ran on it. A
// session is created by dial and dropped whole when its connection ends, so
// no per-connection state outlives its connection and nothing needs resetting
// (grpc-go's addrConn builds a new transport per attempt the same way).
type session struct {
	url     int // index into opts.URLs
	conn    *amqp.Connection
	monitor *heartbeat.Monitor
	closed  chan *amqp.Error     // NotifyClose; buffered so amqp091-go never waits on it
	blocks  <-chan amqp.Blocking // NotifyBlocked; taken by takeBlocked only

	// blocked is the broker's connection.blocked flag for this connection;
	// written by takeBlocked, read by Supervisor.Blocked while the session
	// is live.
	blocked atomic.Bool
	// blockMu serializes takeBlocked's two callers and guards the fields
	// below it.
	blockMu sync.Mutex
	// blockedSince is when the current block began.
	blockedSince time.Time
	// blockEnded is set once the session's end reported it unblocked; no
	// notification taken later counts.
	blockEnded bool
	// drained is closed when drainBlocked exits; nil until takeBlocked
	// starts it, at the connection's first notification.
	drained chan struct{}

	// The loop's own: the blocked state it last logged, and the
	// BlockedTimeout timer (nil while none runs) and when it expires.
	logged        bool
	blockTimer    *time.Timer
	blockSince    time.Time // the blockedSince blockTimer runs for
	blockDeadline time.Time
	// eventMu orders the blocked events of this session after its
	// EventConnected (see Supervisor.syncBlocked) and guards the fields below.
	eventMu   sync.Mutex
	announced bool   // EventConnected was emitted
	reported  bool   // the blocked state the last event reported
	reason    string // the broker's reason for the current block

	// ran lists the hooks whose Up succeeded on this connection, in the
	// order they ran; each gets exactly one Down when the session ends.
	// Only the supervisor's goroutine touches it.
	ran []*hook
	// has is ran as a set, for pendingHooks.
	has map[*hook]bool
}

// didRun records that h's Up succeeded on this session.
func (ss *session) didRun(h *hook) {
	ss.ran = append(ss.ran, h)
	ss.has[h] = true
}

// shutdown ends a session's connection within deadline: the AMQP close
// handshake first, and if that does not finish (a blocked broker does not read
// the close frame; a partitioned socket never answers) closing the raw socket.
func (ss *session) shutdown(ctx context.Context, deadline time.Time) error {
	done := make(chan error, 1)
	go func() { done <- ss.conn.CloseDeadline(deadline) }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		ss.monitor.Close()
		err = <-done
	case <-ctx.Done():
		ss.monitor.Close()
		err = <-done
	}
	ss.monitor.Close()
	ss.waitDrained()
	if err == amqp.ErrClosed {
		err = nil // already gone: nothing left to close
	}
	return err
}

// readerShutdownWait bounds how long abandon lets amqp091-go's reader shut a
// connection down after its socket was closed; the reader fails at once, so
// this is only a safety net.
const readerShutdownWait = time.Second

// abandon tears a lost or failed session down at once. It closes the socket
// and lets amqp091-go's reader, which then fails at once, shut the
// connection down on its own goroutine before anything else closes it: a
// shutdown from here could close the blocked-notification channel while the
// reader is sending on it (amqp091-go v1.16.0 sends outside its lock, a data
// race that can panic with "send on closed channel" when the broker blocks a
// connection just as it is abandoned).
func (ss *session) abandon() {
	ss.monitor.Close()
	t := time.NewTimer(readerShutdownWait)
	defer t.Stop()
	for open := true; open; {
		select {
		case _, open = <-ss.closed:
		case <-t.C:
			open = false
		}
	}
	_ = ss.conn.CloseDeadline(time.Now())
	ss.waitDrained()
}

// syncBlocked reports the session's blocked flag as an event when it differs
// from the last one reported, once the session was announced: a block that
// arrives while a new connection's hooks run is reported right after its
// EventConnected, so an event-driven tracker never sees Blocked before the
// Connected it belongs to, and Blocked and Unblocked always pair.
func (s *Supervisor) syncBlocked(ss *session) {
	ss.eventMu.Lock()
	defer ss.eventMu.Unlock()
	if !ss.announced {
		return
	}
	b := ss.blocked.Load()
	if b == ss.reported {
		return
	}
	ss.reported = b
	if b {
		s.emit(Event{Kind: EventBlocked, Err: fmt.Errorf("warren: blocked: %s", ss.reason), URL: s.redacted[ss.url]})
	} else {
		s.emit(Event{Kind: EventUnblocked, URL: s.redacted[ss.url]})
	}
}

// announce marks the session as reported by EventConnected and reports a
// block that arrived before.
func (s *Supervisor) announce(ss *session) {
	ss.eventMu.Lock()
	ss.announced = true
	ss.eventMu.Unlock()
	s.syncBlocked(ss)
}
