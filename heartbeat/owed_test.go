package heartbeat

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Owed-rule timings: a silence limit far above the owed limit, so that a
// detection before the silence limit can only come from the owed rule.
const (
	testOwedLimit    = 200 * time.Millisecond
	testSilenceLimit = 3 * time.Second
	// notDetected is how long a test waits for a detection that must NOT
	// happen: several owed limits.
	notDetected = 5 * testOwedLimit
)

// newOwedMonitor returns a started Monitor with the owed rule on, its
// drained reads, and the peer end.
func newOwedMonitor(t *testing.T) (*Monitor, net.Conn, <-chan error) {
	t.Helper()
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	m.Start()
	return m, peer, drain(m)
}

// wantOwedDeath waits for m to die of the owed rule, well before the silence
// limit, and returns how long it took from since.
func wantOwedDeath(t *testing.T, m *Monitor, since time.Time) time.Duration {
	t.Helper()
	select {
	case <-m.Dead():
	case <-time.After(testSilenceLimit / 2):
		late, unread := m.OwedDeferrals()
		t.Fatalf("no detection within %v with a reply owed (owed limit %v; held %d late, %d unread)", testSilenceLimit/2, m.OwedLimit(), late, unread)
	}
	took := time.Since(since)
	var dp *DeadPeerError
	if !errors.As(m.Err(), &dp) || dp.Limit < testOwedLimit || dp.Owed < dp.Limit {
		t.Fatalf("Err() = %#v, want a DeadPeerError naming owed replies past a limit of at least %v", m.Err(), testOwedLimit)
	}
	return took
}

func TestOwedReplyDetectedBeforeSilenceLimit(t *testing.T) {
	m, peer, _ := newOwedMonitor(t)
	// The peer answers for a while, then is partitioned while a reply is owed.
	for i := 0; i < 5; i++ {
		m.Owe()
		if _, err := m.Write([]byte("publish")); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write([]byte("ack")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the last ack be read
	start := time.Now()
	m.Owe()
	if _, err := m.Write([]byte("publish")); err != nil {
		t.Fatal(err)
	}
	took := wantOwedDeath(t, m, start)
	if took > testSilenceLimit/4 {
		t.Fatalf("detected after %v, want near the owed limit %v", took, testOwedLimit)
	}
	if g := m.MaxOwedGap(); g <= 0 || g > testOwedLimit {
		t.Fatalf("MaxOwedGap() = %v, want the answered gaps (0 < gap < %v)", g, testOwedLimit)
	}
}

func TestOwedReplyAnsweredIsNotDeath(t *testing.T) {
	m, peer, _ := newOwedMonitor(t)
	// Each request is answered after 60% of the owed limit: slow, never late.
	deadline := time.Now().Add(notDetected)
	for time.Now().Before(deadline) {
		m.Owe()
		if _, err := m.Write([]byte("publish")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testOwedLimit * 6 / 10)
		if _, err := peer.Write([]byte("ack")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.Err(); err != nil {
		t.Fatalf("healthy peer declared dead: %v", err)
	}
}

func TestOwedRuleOffByDefault(t *testing.T) {
	m, _ := newTestMonitor(t, testSilenceLimit)
	m.Start()
	drain(m)
	m.Owe()
	select {
	case <-m.Dead():
		t.Fatalf("declared dead by an owed rule that is off: %v", m.Err())
	case <-time.After(notDetected):
	}
}

func TestOwedRuleSuspendedWhileBlocked(t *testing.T) {
	const silence = 1500 * time.Millisecond
	m, peer := newTestMonitor(t, silence)
	m.SetOwedLimit(testOwedLimit)
	m.Start()
	drain(m)
	// A blocked RabbitMQ keeps sending heartbeats, so silence never runs out.
	stop := keepTalking(peer, 50*time.Millisecond)
	m.SetBlocked(true)
	m.Owe()
	if _, err := m.Write([]byte("publish")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Dead():
		t.Fatalf("blocked connection declared dead: %v", m.Err())
	case <-time.After(notDetected):
	}
	// A wait while blocked is no sample of how fast the broker answers.
	if g := m.MaxOwedGap(); g >= notDetected/2 {
		t.Fatalf("MaxOwedGap() = %v after a block of %v: the blocked wait was counted", g, notDetected)
	}
	// Unblocked, the rule waits one silence limit for the broker to catch up.
	m.SetBlocked(false)
	unblocked := time.Now()
	for time.Since(unblocked) < silence {
		m.Owe()
		select {
		case <-m.Dead():
			t.Fatalf("declared dead %v after the unblock, within the grace: %v", time.Since(unblocked), m.Err())
		case <-time.After(testOwedLimit / 2):
		}
	}
	t.Logf("owed limit %v, longest gap %v", m.OwedLimit(), m.MaxOwedGap())
	// Then the peer falls silent with a reply owed: the owed rule, not
	// silence, must notice.
	stop()
	start := time.Now()
	m.Owe()
	if took := wantOwedDeath(t, m, start); took >= silence {
		t.Fatalf("detected after %v, not before the silence limit %v", took, silence)
	}
}

// keepTalking writes to peer every interval until stop is called.
func keepTalking(peer net.Conn, interval time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				_, _ = peer.Write([]byte("heartbeat"))
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// TestOwedRuleSuspendedByStuckWrite plays a broker that stops reading its
// socket (RabbitMQ's credit flow): the write of the owed request is stuck,
// which proves nothing about the peer.
func TestOwedRuleSuspendedByStuckWrite(t *testing.T) {
	client, server := net.Pipe() // a write blocks until the peer reads
	m, err := NewMonitor(client, testSilenceLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer server.Close()
	m.SetOwedLimit(testOwedLimit)
	m.Start()
	drain(m)
	wrote := make(chan error, 1)
	m.Owe()
	go func() {
		_, err := m.Write([]byte("publish"))
		wrote <- err
	}()
	select {
	case <-m.Dead():
		t.Fatalf("declared dead while our write was stuck: %v", m.Err())
	case <-time.After(notDetected):
	}
	// The broker takes the bytes and then goes silent: the clock restarts
	// from the end of the write.
	buf := make([]byte, 64)
	if _, err := server.Read(buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	wantOwedDeath(t, m, start)
}

// TestOwedRuleTrustsKernelReceipt plays a client too busy to read (a GC-heavy
// process): the broker's answers reach the kernel but not the reader.
func TestOwedRuleTrustsKernelReceipt(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only")
	}
	m, peer := newTestMonitor(t, testSilenceLimit)
	m.SetOwedLimit(testOwedLimit)
	m.Start()
	// Nobody reads m. The peer keeps sending, slower than the owed limit
	// would need, but steadily; the kernel buffers it.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(testOwedLimit / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = peer.Write([]byte("ack"))
			}
		}
	}()
	defer func() { close(stop); <-done }()
	m.Owe()
	select {
	case <-m.Dead():
		t.Fatalf("declared dead while the kernel was receiving: %v", m.Err())
	case <-time.After(notDetected):
	}
}

// TestOwedLimitAdapts: replies that take longer and longer (each below the
// limit in force) raise the limit to OwedGapFactor times the longest gap, so
// a broker that slows down under load is not misjudged; the silence limit
// caps it.
func TestOwedLimitAdapts(t *testing.T) {
	m, peer, _ := newOwedMonitor(t)
	if got := m.OwedLimit(); got != testOwedLimit {
		t.Fatalf("OwedLimit() = %v before any reply, want the floor %v", got, testOwedLimit)
	}
	delay := testOwedLimit * 3 / 4
	for i := 0; i < 2; i++ {
		m.Owe()
		time.Sleep(delay)
		if _, err := peer.Write([]byte("ack")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if err := m.Err(); err != nil {
			t.Fatalf("reply after %v declared dead: %v", delay, err)
		}
		delay = m.OwedLimit() * 3 / 4
	}
	if got, want := m.OwedLimit(), min(OwedGapFactor*m.MaxOwedGap(), testSilenceLimit); got != want {
		t.Fatalf("OwedLimit() = %v after a gap of %v, want %v", got, m.MaxOwedGap(), want)
	}
}

func TestRecommendedOwedLimit(t *testing.T) {
	tests := []struct{ hb, want time.Duration }{
		{10 * time.Second, 750 * time.Millisecond},
		{5 * time.Second, 375 * time.Millisecond},
		{time.Minute, time.Second},
		{2 * time.Second, DefaultOwedLimit},
		{time.Second, DefaultOwedLimit},
		{100 * time.Millisecond, 125 * time.Millisecond},
		{0, DefaultOwedLimit},
	}
	for _, tc := range tests {
		if got := RecommendedOwedLimit(tc.hb); got != tc.want {
			t.Errorf("RecommendedOwedLimit(%v) = %v, want %v", tc.hb, got, tc.want)
		}
	}
}

func TestSetUserTimeout(t *testing.T) {
	client, _ := tcpPair(t)
	got := SetUserTimeout(client, time.Second)
	if want := runtime.GOOS == "linux"; got != want {
		t.Fatalf("SetUserTimeout on TCP = %v, want %v on %s", got, want, runtime.GOOS)
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if SetUserTimeout(p, time.Second) {
		t.Fatal("SetUserTimeout on a pipe reported success")
	}
	if SetUserTimeout(client, 0) {
		t.Fatal("SetUserTimeout(0) reported success")
	}
}
