package conn

import (
	"errors"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// oweReply tells the Monitor of c's session that a reply is about to be owed:
// a publish on a confirm-mode channel of c will be written next. It must be
// called before the write, so that the reply can never be read before it
// counts as owed. It does nothing unless c is the live connection (a channel
// of a connection being abandoned owes nothing that matters) and costs two
// atomic loads when a reply is already owed.
func (s *Supervisor) oweReply(c *amqp.Connection) {
	if ss := s.live.Load(); ss != nil && ss.conn == c {
		ss.monitor.Owe()
	}
}

// OwedReport describes the replies-owed rule on the current connection
// (see Options.OwedReplyLimit).
type OwedReport struct {
	// LongestGap is the longest time a reply was owed before anything was
	// read: the figure OwedReplyLimit must stay above, with a margin, for
	// the rule never to misjudge a healthy broker.
	LongestGap time.Duration
	// LateDeferrals and UnreadDeferrals count the verdicts the rule held
	// because this process, not the broker, was slow: its timer fired late,
	// or the kernel had received data not yet read (Linux).
	LateDeferrals, UnreadDeferrals uint64
	// Probes counts the probes the rule sent: requests the broker answers
	// without its queues, sent when a reply was owed for a third of the limit
	// (see heartbeat.Monitor.SetOwedProbe); a probe still unanswered when
	// the next is due is not sent again, but counts.
	Probes uint64
}

// Owed reports on the replies-owed rule of the current connection; it is
// the zero OwedReport while not Ready.
func (s *Supervisor) Owed() OwedReport {
	ss := s.live.Load()
	if ss == nil {
		return OwedReport{}
	}
	late, unread := ss.monitor.OwedDeferrals()
	return OwedReport{LongestGap: ss.monitor.MaxOwedGap(), LateDeferrals: late, UnreadDeferrals: unread,
		Probes: ss.monitor.OwedProbes()}
}

// owedMemoryTTL is how long a connection lost to the replies-owed rule
// raises the owed limit of the connections after it.
const owedMemoryTTL = 10 * time.Minute

// owedMemory carries the replies-owed rule's lesson from one connection to
// the next. A connection declared dead because a reply was owed for d may
// have been a broker that answers slowly on purpose (a quorum queue without
// a majority holds its confirms; a broker on an overloaded host is late),
// which a reconnect does not change, and which shows when the next dial
// succeeds at once. The next connections, for
// owedMemoryTTL, therefore use at least OwedGapFactor x d as their owed
// limit: a broker that keeps holding replies costs a few reconnects, each
// tripling the limit, until the limit reaches DeadPeerLimit and the rule
// no longer acts before the silence rule. A real partition pays nothing:
// its dials fail for longer than the silence limit.
type owedMemory struct {
	mu    sync.Mutex
	last  *heartbeat.Monitor // the previous connection's Monitor
	floor time.Duration      // the raised limit; 0 if none
	until time.Time          // when the raised limit expires
}

// limit returns the owed limit for a new connection, learning first from
// how the previous one ended; configured is Options.OwedReplyLimit, capped
// by max (DeadPeerLimit).
func (o *owedMemory) limit(configured, max time.Duration) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var dp *heartbeat.DeadPeerError
	// Only a verdict the broker contradicted by answering the very next dial
	// (within the silence limit) teaches anything: behind a real partition
	// the dials fail until it heals, and the rule keeps its limit for the
	// next one.
	if o.last != nil && errors.As(o.last.Err(), &dp) && dp.Owed > 0 && time.Since(dp.At) < max {
		o.floor = min(dp.Owed*heartbeat.OwedGapFactor, max)
		o.until = time.Now().Add(owedMemoryTTL)
	}
	o.last = nil
	if o.floor > configured && time.Now().Before(o.until) {
		return o.floor
	}
	return configured
}

// track remembers m as the current connection's Monitor.
func (o *owedMemory) track(m *heartbeat.Monitor) {
	o.mu.Lock()
	o.last = m
	o.mu.Unlock()
}
