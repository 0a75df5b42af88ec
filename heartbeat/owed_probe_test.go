package heartbeat

import (
	"net"
	"sync"
	"testing"
	"time"
)

// probeLog records when the Monitor asked for probes.
type probeLog struct {
	mu  sync.Mutex
	at  []time.Time
	ask chan struct{}
	// answer, if set, is the peer end: the probe writes its answer there
	// before it returns, as a live broker's would be on its way, so that a
	// starved test goroutine cannot make it late.
	answer net.Conn
}

func (p *probeLog) probe() {
	p.mu.Lock()
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	if p.answer != nil {
		_, _ = p.answer.Write([]byte("qos-ok"))
	}
	select {
	case p.ask <- struct{}{}:
	default:
	}
}

func (p *probeLog) times() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.at...)
}

// newProbedMonitor returns a started Monitor with the owed rule and a probe,
// the peer end, and the probe log.
func newProbedMonitor(t *testing.T) (*Monitor, net.Conn, *probeLog) {
	t.Helper()
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	p := &probeLog{ask: make(chan struct{}, 1)}
	m.SetOwedProbe(p.probe)
	m.Start()
	drain(m)
	return m, peer, p
}

// owe records a reply owed and writes its request.
func owe(t *testing.T, m *Monitor) time.Time {
	t.Helper()
	at := time.Now()
	m.Owe()
	if _, err := m.Write([]byte("publish")); err != nil {
		t.Fatal(err)
	}
	return at
}

// A partitioned peer answers no probe: the verdict still falls at the owed
// limit, after exactly one probe sent a third of the way.
func TestOwedProbeUnansweredKeepsTheVerdictAtTheLimit(t *testing.T) {
	m, _, p := newProbedMonitor(t)
	start := owe(t, m)
	took := wantOwedDeath(t, m, start)
	if took > testSilenceLimit/4 {
		t.Fatalf("detected after %v, want near the owed limit %v: the probe must not delay a verdict", took, testOwedLimit)
	}
	got := p.times()
	if len(got) != 1 {
		t.Fatalf("%d probes for one owed wait, want 1", len(got))
	}
	if d := got[0].Sub(start); d < testOwedLimit/owedProbeDivisor || d >= took {
		t.Fatalf("probe sent %v after the reply became owed, want from a third of the owed limit (%v) and before the verdict (%v)", d, testOwedLimit/owedProbeDivisor, took)
	}
	if m.OwedProbes() != 1 {
		t.Fatalf("OwedProbes() = %d, want 1", m.OwedProbes())
	}
}

// A peer whose replies are held (a quorum queue electing a leader) but which
// answers the probe is never declared dead, however long the hold; every
// owed wait probes once (the answers are samples like any other replies).
func TestOwedProbeAnsweredHoldsNoVerdict(t *testing.T) {
	m, peer, p := newProbedMonitor(t)
	p.mu.Lock()
	p.answer = peer // answered by the probe itself (see probeLog)
	p.mu.Unlock()
	// The held replies: nothing but probe answers for 8 owed limits, with
	// publishes going out all along.
	end := time.Now().Add(8 * testOwedLimit)
	waits := 0
	for time.Now().Before(end) {
		start := owe(t, m)
		waits++
		select {
		case <-p.ask:
		case <-m.Dead():
			t.Fatalf("declared dead while the peer answered every probe: %v", m.Err())
		case <-time.After(testSilenceLimit / 2):
			t.Fatal("no probe within half the silence limit of a reply owed")
		}
		// Let the answer be read before the next publish, or it would end
		// that one's wait instead.
		for deadline := time.Now().Add(testSilenceLimit / 2); !m.LastRead().After(start); {
			if time.Now().After(deadline) {
				t.Fatal("the probe's answer was not read")
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-m.Dead():
		t.Fatalf("declared dead while the peer answered every probe: %v", m.Err())
	default:
	}
	if n := len(p.times()); n != waits {
		t.Fatalf("%d probes for %d owed waits, want one each", n, waits)
	}
	if g := m.MaxOwedGap(); g < testOwedLimit/owedProbeDivisor {
		t.Fatalf("MaxOwedGap() = %v after waits ended by probe answers, want at least the probe's moment %v (a sample like any other)", g, testOwedLimit/owedProbeDivisor)
	}
}

// A reply that comes before half the limit sends no probe. The test's own
// sleeps overshoot on a loaded host (14 of 30 runs failed at GOMAXPROCS=1
// beside two CPU hogs), so a wait whose answer was read later than a
// quarter of the limit (twice the intended gap) may have been probed.
func TestOwedProbeNotSentForPromptReplies(t *testing.T) {
	m, peer, p := newProbedMonitor(t)
	slow := 0
	for i := 0; i < 20; i++ {
		start := owe(t, m)
		time.Sleep(testOwedLimit / 8)
		if _, err := peer.Write([]byte("ack")); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(testSilenceLimit / 2); !m.LastRead().After(start); {
			if time.Now().After(deadline) {
				t.Fatal("the answer was not read")
			}
			time.Sleep(time.Millisecond)
		}
		if m.LastRead().Sub(start) >= testOwedLimit/4 {
			slow++
		}
	}
	if n := len(p.times()); n > slow {
		t.Fatalf("%d probes for replies answered within %v (%d of them read later than %v), want at most %d", n, testOwedLimit/8, slow, testOwedLimit/4, slow)
	}
}

// A blocked connection owes nothing, so it is never probed.
func TestOwedProbeNotSentWhileBlocked(t *testing.T) {
	m, _, p := newProbedMonitor(t)
	m.SetBlocked(true)
	owe(t, m)
	time.Sleep(2 * testOwedLimit)
	if n := len(p.times()); n != 0 {
		t.Fatalf("%d probes while blocked, want 0", n)
	}
}
