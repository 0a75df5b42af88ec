package heartbeat

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Attacks on the owed rule's probe (owed_probe.go): the probe must get its
// chance before every owed verdict, however late the timer that sends it.

// answeringProbe returns a probe that a live peer answers after delay: the
// peer's connection process works while its queues hold the reply. With no
// delay the answer is in the kernel before the probe returns, so that a
// starved test goroutine cannot make it late (a slow reader is the unread
// deferral's).
func answeringProbe(peer net.Conn, delay time.Duration) func() {
	return func() {
		if delay == 0 {
			_, _ = peer.Write([]byte("qos-ok"))
			return
		}
		time.AfterFunc(delay, func() { _, _ = peer.Write([]byte("qos-ok")) })
	}
}

// waitProbes waits up to d for m to have sent a probe, failing if it dies.
func waitProbes(t *testing.T, m *Monitor, d time.Duration, what string) {
	t.Helper()
	for end := time.Now().Add(d); m.OwedProbes() == 0; {
		if time.Now().After(end) {
			t.Fatalf("%s: no probe within %v", what, d)
		}
		select {
		case <-m.Dead():
			t.Fatalf("%s: declared dead with no probe sent: %v", what, m.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// stallTimer holds m.mu for d, as a process that does not run for d holds
// back the Monitor's timer goroutine; reads go on meanwhile.
func stallTimer(m *Monitor, d time.Duration) {
	m.mu.Lock()
	time.Sleep(d)
	m.mu.Unlock()
}

// wantAlive fails if m is declared dead within d.
func wantAlive(t *testing.T, m *Monitor, d time.Duration, what string) {
	t.Helper()
	select {
	case <-m.Dead():
		t.Fatalf("%s: declared dead with %d probe(s) sent: %v", what, m.OwedProbes(), m.Err())
	case <-time.After(d):
	}
}

// A timer that fires past the owed limit (a starved host) used to skip the
// probe and go straight to the late deferral and the verdict: a live broker
// whose queues held the reply was declared dead without being asked. The
// probe is sent however late, and judged half a limit later.
func TestAttack5LateTimerStillProbes(t *testing.T) {
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	m.SetOwedProbe(answeringProbe(peer, 0))
	m.Start()
	drain(m)
	owe(t, m)
	stallTimer(m, testOwedLimit*6/5) // the half-limit timer fires 0.7 limit late
	wantAlive(t, m, notDetected, "timer late past the owed limit")
	if m.OwedProbes() == 0 {
		t.Fatal("no probe sent for a reply owed past the limit")
	}
}

// A timer late by less than half the limit sent the probe with only what
// was left of the limit to be answered (here a twentieth of it, 10 ms): on
// a loaded host the answer takes longer than that. The probe's answer gets
// half the limit, as it does when the timer is on time. The answer is
// written 40 ms after the probe; a host too slow to write it within half
// the limit makes the run meaningless, and it is skipped.
func TestAttack5LateProbeGetsHalfTheLimit(t *testing.T) {
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	var probedAt, answeredAt atomic.Int64 // UnixNano
	m.SetOwedProbe(func() {
		probedAt.Store(time.Now().UnixNano())
		time.AfterFunc(testOwedLimit/5, func() {
			_, _ = peer.Write([]byte("qos-ok"))
			answeredAt.Store(time.Now().UnixNano())
		})
	})
	m.Start()
	drain(m)
	owe(t, m)
	stallTimer(m, testOwedLimit*19/20)
	select {
	case <-m.Dead():
		p := probedAt.Load()
		if p == 0 {
			t.Fatalf("declared dead with no probe sent: %v", m.Err())
		}
		for end := time.Now().Add(time.Second); answeredAt.Load() == 0 && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
		if a := answeredAt.Load(); a == 0 || time.Duration(a-p) >= testOwedLimit/2 {
			t.Skipf("host too slow: the answer was not written within %v of the probe (took %v)", testOwedLimit/2, time.Duration(a-p))
		}
		t.Fatalf("declared dead after a probe answered in %v: %v", time.Duration(answeredAt.Load()-p), m.Err())
	case <-time.After(notDetected):
	}
}

// After an unblock the rule waits one silence limit, then judged the reply
// owed since a publish inside that grace at once: a verdict with no probe.
func TestAttack5GraceEndProbes(t *testing.T) {
	const silence = 2 * time.Second
	m, peer := newTestMonitor(t, silence)
	m.SetOwedLimit(testOwedLimit)
	m.SetOwedProbe(answeringProbe(peer, 0))
	m.Start()
	drain(m)
	m.SetBlocked(true)
	m.SetBlocked(false)
	graceEnd := time.Now().Add(silence)
	// The broker lives: heartbeats until shortly before the publish.
	for time.Until(graceEnd) > silence/5 {
		if _, err := peer.Write([]byte("heartbeat")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(silence / 20)
	}
	time.Sleep(silence / 20)
	owe(t, m) // owed about 300 ms when the grace ends, if this host keeps time
	waitProbes(t, m, silence, "reply owed across the end of the unblock grace")
	wantAlive(t, m, 2*testOwedLimit, "reply owed across the end of the unblock grace")
}

// A wait that was probed is a sample for the adaptive limit like any other:
// when the broker stops reading (credit flow) the probe sits behind the
// publishes, so the reply comes first, and a reply gap of 0.7 x the limit
// must raise the limit (3 x 0.7 = 2.1 x the floor) as README says credit
// flow does, or the next gap of 1.5 x the floor is judged dead. It failed
// while probed waits were left out of the samples.
func TestAttack5ProbedReplyGapIsLearned(t *testing.T) {
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	m.SetOwedProbe(func() {}) // the broker does not read it: no answer
	m.Start()
	drain(m)
	for i := 0; i < 3; i++ {
		owe(t, m)
		time.Sleep(testOwedLimit * 7 / 10)
		if _, err := peer.Write([]byte("ack")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l := m.OwedLimit(); l < 2*testOwedLimit {
		t.Fatalf("OwedLimit() = %v after reply gaps of %v: the gaps were not learned", l, testOwedLimit*7/10)
	}
}
