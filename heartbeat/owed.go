package heartbeat

import (
	"sync/atomic"
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

// The limit adapts. Each read that ends an owed wait is a sample of how long
// this broker, on this host, takes to answer; the rule then allows
// OwedGapFactor (3) times the longest gap of the last five to ten minutes, and
// never less than the configured owed limit (the floor) nor more than the
// silence limit. A broker throttled by credit flow, or a host short of CPU,
// thus raises its own limit, while a connection whose replies arrive within
// milliseconds is judged against the floor.
//
// After the broker lifts a block, the rule stays suspended for one silence
// limit: a broker coming out of a memory alarm answers late while it catches
// up, and the silence limit still applies meanwhile.

// OwedGapFactor is how far above the longest recent reply gap the adaptive
// owed limit is set.
const OwedGapFactor = 3

// owedGapWindow is how long a reply gap keeps counting for the adaptive
// limit: between one and two windows. A broker that was slow lately (credit
// flow, a busy host, an alarm just lifted) is likely to be slow again.
const owedGapWindow = 5 * time.Minute

// DefaultOwedLimit is the owed limit that RecommendedOwedLimit never goes
// below, unless the silence limit is shorter.
const DefaultOwedLimit = 250 * time.Millisecond

// maxRecommendedOwedLimit caps RecommendedOwedLimit for long heartbeats.
const maxRecommendedOwedLimit = time.Second

// slowWrite is how long a Write may take before it counts as stuck: the
// broker (or the network) is not taking our bytes, so a late reply proves
// nothing about the peer being gone.
const slowWrite = 20 * time.Millisecond

// RecommendedOwedLimit returns the owed limit warren uses by default for a
// heartbeat: 3/40 of it, at least DefaultOwedLimit (250ms) and at most 1s,
// but never more than the silence limit RecommendedLimit(heartbeat). That is
// 250ms at a 1s heartbeat and 750ms at the 10s default: above the longest
// reply gaps a loaded single node showed (330ms in a 10-minute soak, 322ms
// in a 60 s one at load average 10) by more than twice, and above the
// 505-718ms a live cluster node was silent in the failover runs that had no
// probe, while a partition under load is still noticed within a second
// (issue 16's target at the default heartbeat). The limit is a
// floor: the Monitor raises it to OwedGapFactor times the longest recent
// reply gap (see SetOwedLimit). A heartbeat of 0 gives DefaultOwedLimit.
func RecommendedOwedLimit(heartbeat time.Duration) time.Duration {
	l := min(max(heartbeat*3/40, DefaultOwedLimit), maxRecommendedOwedLimit)
	if s := RecommendedLimit(heartbeat); s > 0 && s < l {
		return s
	}
	return l
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
	if m.owedLimit <= 0 || m.owedAt.Load() != 0 || m.blocked.Load() {
		// While blocked nothing is owed: a publish a batch wrote after the
		// block arrived waits for the unblock, and its gap is no sample.
		return
	}
	now := m.stamp()
	if !m.owedAt.CompareAndSwap(0, now) {
		return
	}
	// The timer may sleep until a silence deadline far beyond this reply's;
	// bring it forward. Under traffic this happens at most once per timer
	// period, since the timer then stays armed within the owed limit.
	limit := m.effectiveOwedLimit()
	if m.probe != nil {
		limit /= owedProbeDivisor // the first decision is the probe's
	}
	due := now + int64(limit)
	if m.dueAt.Load() <= due {
		return
	}
	m.mu.Lock()
	if m.timer != nil && !m.closing && m.dueAt.Load() > due {
		m.dueAt.Store(due)
		m.timer.Reset(limit)
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
		if !blocked {
			m.unblockedAt.Store(m.stamp())
		}
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

// MaxOwedGap returns the longest time the owed rule saw a reply owed before
// the next read, over the Monitor's life: the figure the owed limit must stay
// above. Like the rule, it counts from the end of a slow write, and not at
// all across a read that ended a stuck write's suspension.
func (m *Monitor) MaxOwedGap() time.Duration { return time.Duration(m.maxOwedGap.Load()) }

// OwedDeferrals counts the times the owed rule found a reply owed past its
// limit and held its verdict: late, because its timer fired more than half
// the owed limit late (this process was not running); unread, because the
// kernel had received data this process had not read yet. Both mean the
// process, not the peer, was slow; many of them say the host is overloaded.
func (m *Monitor) OwedDeferrals() (late, unread uint64) {
	return m.lateDefers.Load(), m.unreadDefers.Load()
}

// noteRead clears the owed reply after a read at stamp now and records the
// gap. Called on every Read that returned data.
func (m *Monitor) noteRead(now int64) {
	o := m.owedAt.Load()
	if o == 0 || !m.owedAt.CompareAndSwap(o, 0) || m.blocked.Load() {
		return
	}
	if ws := m.writeStart.Load(); ws != 0 && time.Duration(now-ws) > slowWrite {
		return // the rule was suspended
	}
	from := o
	if sw := m.slowWriteEnd.Load(); sw > from {
		from = sw
	}
	gap := now - from
	if w := m.gapWindow.Load(); now-w > int64(owedGapWindow) && m.gapWindow.CompareAndSwap(w, now) {
		m.gapPrev.Store(m.gapCur.Swap(0))
	}
	storeMax(&m.gapCur, gap)
	storeMax(&m.maxOwedGap, gap)
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// effectiveOwedLimit is the adaptive owed limit: OwedGapFactor times the
// longest reply gap of the last five to ten minutes, at least the configured
// floor and at most the silence limit.
func (m *Monitor) effectiveOwedLimit() time.Duration {
	l := m.owedLimit
	g := m.gapCur.Load()
	if p := m.gapPrev.Load(); p > g {
		g = p
	}
	if a := time.Duration(g) * OwedGapFactor; a > l {
		l = a
	}
	if l > m.limit {
		l = m.limit
	}
	return l
}

// OwedLimit returns the owed limit in force now: the configured floor, or
// more if replies were slow lately (see OwedGapFactor); 0 if the rule is off.
func (m *Monitor) OwedLimit() time.Duration {
	if m.owedLimit <= 0 {
		return 0
	}
	return m.effectiveOwedLimit()
}

// owedCheckLocked judges the owed rule at stamp now. It returns dead with the
// time the reply has been owed, or else how long until the rule could next
// decide (0: nothing owed, no deadline). probe is the owed stamp a probe is
// due for (see SetOwedProbe), 0 if none. Caller must hold m.mu.
func (m *Monitor) owedCheckLocked(now int64, late time.Duration) (dead bool, owed, limit, next time.Duration, probe int64) {
	o := m.owedAt.Load()
	if m.owedLimit <= 0 || o == 0 || m.blocked.Load() {
		return false, 0, 0, 0, 0
	}
	limit = m.effectiveOwedLimit()
	if u := m.unblockedAt.Load(); u != 0 && time.Duration(now-u) < m.limit {
		// Just unblocked: judge from the end of the grace.
		return false, 0, limit, m.limit - time.Duration(now-u), 0
	}
	if ws := m.writeStart.Load(); ws != 0 && time.Duration(now-ws) > slowWrite {
		// A write is stuck: judge from its end.
		return false, 0, limit, limit, 0
	}
	from := o
	if sw := m.slowWriteEnd.Load(); sw > from {
		from = sw
	}
	owed = time.Duration(now - from)
	if m.probe != nil {
		// The probe's answer gets the rest of the limit: two thirds of it.
		answer := limit - limit/owedProbeDivisor
		if m.probedAt.Load() != o {
			// Ask the peer for an answer of its own: one that does not
			// wait on the queues holding the reply (see SetOwedProbe).
			if at := limit / owedProbeDivisor; owed < at {
				return false, 0, limit, at - owed, 0
			}
			// However late this check runs (a starved host, the end of an
			// unblock grace), no verdict without a probe, and the probe
			// gets the time for its answer it gets on time.
			return false, 0, limit, max(limit-owed, answer), o
		}
		if wait := time.Duration(m.probeSent + int64(answer) - now); wait > 0 {
			return false, 0, limit, max(limit-owed, wait), 0
		}
	}
	if owed < limit {
		return false, 0, limit, limit - owed, 0
	}
	if late > limit/2 && m.lateHeld != o {
		// This process did not run for a while; give the reader a chance,
		// once per owed reply, so that a host that is always late still
		// gets a verdict.
		m.lateHeld = o
		m.lateDefers.Add(1)
		return false, 0, limit, limit / 2, 0
	}
	if age, ok := recvAge(m.conn); ok && age < limit {
		// The kernel received bytes recently: the peer is alive and this
		// process is slow to read.
		m.unreadDefers.Add(1)
		return false, 0, limit, limit - age, 0
	}
	return true, owed, limit, 0, 0
}
