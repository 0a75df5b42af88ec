package heartbeat

import (
	"time"
)

// Replies owed: detection under load.
//
// Silence alone must allow for the broker's idle heartbeat cadence, up to a
// whole heartbeat (see CheckLimit). A client that has just written a request
// the broker must answer (a publish on a confirm-mode channel) knows more:
// the answer normally arrives within milliseconds, so "a reply is owed since
// t and nothing at all was read since t" is far stronger evidence than idle
// silence, and can be judged against a much shorter limit.
//
// The rule keeps no count of outstanding requests, so it cannot leak one:
// Owe records the first request written after the last read, and any read
// clears it. Owe is called before the request is written, so a reply can
// never be read before its request counts as owed. A reply still outstanding
// after an unrelated read counts again from the next Owe; under steady
// traffic that is within one message interval.
//
// Three things suspend the rule, because each makes a late reply legitimate:
//   - the broker blocked the connection (SetBlocked): it stops reading, and
//     owes nothing;
//   - a Write is stuck in the kernel: the broker is not reading our socket
//     (RabbitMQ's credit flow stops its reader), or the network is down; the
//     silence limit and, on Linux, TCP_USER_TIMEOUT judge that case. After a
//     slow write the owed clock restarts from its end;
//   - on Linux, the kernel received data less than the owed limit ago
//     (TCP_INFO): the bytes are there, only this process was too slow to read
//     them (a GC-heavy or starved client).
//
// A timer that fires far past its deadline means this process was not
// running; the check then re-arms once for the reader to catch up instead of
// judging silence it could not observe.

// DefaultOwedLimit is the owed limit that RecommendedOwedLimit never goes
// below.
const DefaultOwedLimit = 250 * time.Millisecond

// slowWrite is how long a Write may take before it counts as stuck: the
// broker (or the network) is not taking our bytes, so a late reply proves
// nothing about the peer being gone.
const slowWrite = 20 * time.Millisecond

// RecommendedOwedLimit returns the owed limit warren uses by default: 250ms,
// the longest read gap with replies owed measured on a broker throttled by
// credit flow with a margin above it (see BENCHMARKS.md), but never more than
// the silence limit for heartbeat, which already bounds detection.
func RecommendedOwedLimit(heartbeat time.Duration) time.Duration {
	if l := RecommendedLimit(heartbeat); l > 0 && l < DefaultOwedLimit {
		return l
	}
	return DefaultOwedLimit
}

// SetOwedLimit turns on the replies-owed rule: the peer is declared dead when
// a reply has been owed (see Owe) for d with nothing read meanwhile. It must
// be called before Start; d <= 0 turns the rule off, which is the default.
func (m *Monitor) SetOwedLimit(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d < 0 {
		d = 0
	}
	m.owedLimit = d
}

// Owe records that the caller is about to write a request the peer must
// answer, such as a publish on a confirm-mode channel. It must be called
// before the request is written. It is cheap (an atomic load) when a reply is
// already owed, and does nothing when the rule is off.
func (m *Monitor) Owe() {
	if m.owedLimit <= 0 || m.owedAt.Load() != 0 {
		return
	}
	now := m.stamp()
	if !m.owedAt.CompareAndSwap(0, now) {
		return
	}
	// The timer may sleep until a silence deadline far beyond this reply's;
	// bring it forward. Under traffic this happens at most once per timer
	// period, since the timer then stays armed within the owed limit.
	due := now + int64(m.owedLimit)
	if m.dueAt.Load() <= due {
		return
	}
	m.mu.Lock()
	if m.timer != nil && !m.closing && m.dueAt.Load() > due {
		m.dueAt.Store(due)
		m.timer.Reset(m.owedLimit)
	}
	m.mu.Unlock()
}

// SetBlocked tells the Monitor whether the broker has blocked the connection
// (connection.blocked). A blocked broker stops reading and owes nothing, so
// the owed rule is suspended while blocked; the silence limit still applies,
// since a blocked RabbitMQ keeps sending heartbeats. Either change forgets
// the reply owed so far. A TCP user timeout set with Monitor.SetUserTimeout
// is lifted while blocked: a broker that stops reading for the length of an
// alarm shrinks its window to zero, and Linux kernels before 2023 aborted a
// connection whose zero-window probes were acknowledged once the timeout ran
// out.
func (m *Monitor) SetBlocked(blocked bool) {
	if m.blocked.Swap(blocked) != blocked {
		m.mu.Lock()
		if ut := m.userTimeout; ut > 0 {
			if blocked {
				ut = 0
			}
			setUserTimeout(m.conn, ut)
		}
		m.mu.Unlock()
	}
	m.owedAt.Store(0)
}

// SetUserTimeout sets TCP_USER_TIMEOUT to d on the Monitor's conn (see the
// package function SetUserTimeout) and keeps it lifted while the connection
// is blocked (see SetBlocked). It reports whether the OS took it.
func (m *Monitor) SetUserTimeout(d time.Duration) bool {
	if !SetUserTimeout(m.conn, d) {
		return false
	}
	m.mu.Lock()
	m.userTimeout = d
	m.mu.Unlock()
	return true
}

// MaxOwedGap returns the longest time a reply was owed before the next read,
// over the Monitor's life: the figure the owed limit must stay above.
func (m *Monitor) MaxOwedGap() time.Duration { return time.Duration(m.maxOwedGap.Load()) }

// noteRead clears the owed reply after a read at stamp now and records the
// gap. Called on every Read that returned data.
func (m *Monitor) noteRead(now int64) {
	o := m.owedAt.Load()
	if o == 0 || !m.owedAt.CompareAndSwap(o, 0) {
		return
	}
	gap := now - o
	for {
		max := m.maxOwedGap.Load()
		if gap <= max || m.maxOwedGap.CompareAndSwap(max, gap) {
			return
		}
	}
}

// owedCheckLocked judges the owed rule at stamp now. It returns dead with the
// time the reply has been owed, or else how long until the rule could next
// decide (0: nothing owed, no deadline). Caller must hold m.mu.
func (m *Monitor) owedCheckLocked(now int64, late time.Duration) (dead bool, owed, next time.Duration) {
	limit := m.owedLimit
	o := m.owedAt.Load()
	if limit <= 0 || o == 0 || m.blocked.Load() {
		return false, 0, 0
	}
	if ws := m.writeStart.Load(); ws != 0 && time.Duration(now-ws) > slowWrite {
		// A write is stuck: judge from its end.
		return false, 0, limit
	}
	from := o
	if sw := m.slowWriteEnd.Load(); sw > from {
		from = sw
	}
	owed = time.Duration(now - from)
	if owed < limit {
		return false, 0, limit - owed
	}
	if late > limit/2 {
		// This process did not run for a while; give the reader a chance.
		return false, 0, limit / 2
	}
	if age, ok := recvAge(m.conn); ok && age < limit {
		// The kernel received bytes recently: the peer is alive and this
		// process is slow to read.
		return false, 0, limit - age
	}
	return true, owed, 0
}
