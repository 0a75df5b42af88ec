package heartbeat

import (
	"net"
	"os"
	"testing"
	"time"
)

// Attacks on the owed rule's probe (owed_probe.go): the probe must get its
// chance before every owed verdict, however late the timer that sends it.

// answeringProbe returns a probe that a live peer answers after delay: the
// peer's connection process works while its queues hold the reply.
func answeringProbe(peer net.Conn, delay time.Duration) func() {
	return func() {
		go func() {
			time.Sleep(delay)
			_, _ = peer.Write([]byte("qos-ok"))
		}()
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
// was left of the limit to be answered (here a tenth of it, 20 ms): on a
// loaded host the answer takes longer than that. The probe's answer gets
// half the limit, as it does when the timer is on time.
func TestAttack5LateProbeGetsHalfTheLimit(t *testing.T) {
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	m.SetOwedProbe(answeringProbe(peer, testOwedLimit/4))
	m.Start()
	drain(m)
	owe(t, m)
	stallTimer(m, testOwedLimit*9/10)
	wantAlive(t, m, notDetected, "probe sent late, answered within half the limit")
}

// After an unblock the rule waits one silence limit, then judged the reply
// owed since a publish inside that grace at once: a verdict with no probe.
func TestAttack5GraceEndProbes(t *testing.T) {
	const silence = time.Second
	m, peer := newTestMonitor(t, silence)
	m.SetOwedLimit(testOwedLimit)
	m.SetOwedProbe(answeringProbe(peer, 0))
	m.Start()
	drain(m)
	m.SetBlocked(true)
	m.SetBlocked(false)
	time.Sleep(silence * 7 / 10)
	if _, err := peer.Write([]byte("heartbeat")); err != nil { // the broker lives
		t.Fatal(err)
	}
	time.Sleep(silence / 20)
	owe(t, m) // owed 250 ms when the grace ends
	wantAlive(t, m, silence*6/10, "reply owed across the end of the unblock grace")
	if m.OwedProbes() == 0 {
		t.Fatal("no probe sent for a reply owed across the end of the grace")
	}
}

// Known defect, not fixed: a wait that was probed is never a sample for the
// adaptive limit, even when the read that ended it was the reply itself.
// When the broker stops reading (credit flow) the probe sits behind the
// publishes, so the reply comes first, and a reply gap of 0.7 x the limit
// no longer raises the limit as README says credit flow does; the next
// gap of 1.5 x the floor is then judged dead (before the probe it was
// learned: 3 x 0.7 = 2.1 x the floor). Telling the probe's answer from the
// reply needs to know which frame a read carried, which the Monitor cannot
// (TLS); set WARREN_ATTACK5_KNOWN=1 to run it.
func TestAttack5ProbedReplyGapIsLearned(t *testing.T) {
	if os.Getenv("WARREN_ATTACK5_KNOWN") == "" {
		t.Skip("known defect: probed waits teach the adaptive limit nothing (see the comment)")
	}
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
