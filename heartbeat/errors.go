package heartbeat

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrDeadPeer reports that the peer sent nothing for longer than the
	// dead-peer limit. A *DeadPeerError matches it with errors.Is.
	ErrDeadPeer = errors.New("heartbeat: dead peer")
	// ErrInvalidLimit reports a dead-peer limit that is not positive or that is
	// too short for the negotiated AMQP heartbeat.
	ErrInvalidLimit = errors.New("heartbeat: invalid limit")
	// ErrNilConn reports that NewMonitor was given a nil net.Conn.
	ErrNilConn = errors.New("heartbeat: nil conn")
)

// DeadPeerError is the error a Monitor records when it declares the peer dead.
type DeadPeerError struct {
	// Silence is how long nothing had been read when the peer was declared dead.
	Silence time.Duration
	// Limit is the limit that was exceeded: the dead-peer limit (or the idle
	// limit after a heartbeat frame), or the owed limit when Owed is set.
	Limit time.Duration
	// Owed is how long a reply had been owed with nothing read when the
	// replies-owed rule declared the peer dead (see Monitor.Owe); 0 when
	// silence alone did.
	Owed time.Duration
	// At is when the peer was declared dead.
	At time.Time
}

// Error reports the measured silence and the limit it exceeded.
func (e *DeadPeerError) Error() string {
	if e.Owed > 0 {
		return fmt.Sprintf("%v: replies owed for %v with nothing read (owed limit %v)", ErrDeadPeer, roundForHumans(e.Owed), e.Limit)
	}
	return fmt.Sprintf("%v: nothing read for %v (limit %v)", ErrDeadPeer, roundForHumans(e.Silence), e.Limit)
}

// Is reports whether target is ErrDeadPeer, so that callers need not know the
// concrete type to classify the failure.
func (e *DeadPeerError) Is(target error) bool { return target == ErrDeadPeer }

// roundForHumans drops sub-millisecond noise from long durations; the exact
// nanoseconds of a multi-second silence only make log lines harder to read.
func roundForHumans(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d
}
