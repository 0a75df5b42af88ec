package heartbeat

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// newTestMonitor wraps the client end of a TCP pair and returns the monitor and
// the server end, which plays the broker.
func newTestMonitor(t *testing.T, limit time.Duration) (*Monitor, net.Conn) {
	t.Helper()
	client, server := tcpPair(t)
	m, err := NewMonitor(client, limit)
	if err != nil {
		t.Fatalf("NewMonitor: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, server
}

// drain reads from m until it fails, like amqp091-go's reader goroutine, and
// returns the error through the channel.
func drain(m *Monitor) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, m)
		if err == nil {
			err = io.EOF
		}
		errc <- err
	}()
	return errc
}

func TestNewMonitorRejects(t *testing.T) {
	client, _ := tcpPair(t)
	tests := []struct {
		name  string
		conn  net.Conn
		limit time.Duration
		want  error
	}{
		{"nil conn", nil, time.Second, ErrNilConn},
		{"zero limit", client, 0, ErrInvalidLimit},
		{"negative limit", client, -time.Second, ErrInvalidLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMonitor(tc.conn, tc.limit)
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewMonitor(_, %v) error = %v, want %v", tc.limit, err, tc.want)
			}
			if m != nil {
				t.Fatalf("NewMonitor returned a Monitor along with an error")
			}
		})
	}
}

func TestMonitorDetectsSilence(t *testing.T) {
	for _, limit := range []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		limit := limit
		t.Run(limit.String(), func(t *testing.T) {
			t.Parallel()
			// The peer talks for a while, then goes silent without closing.
			// A sleep of the talk overrunning the limit (a loaded host) is
			// a real silence, rightly detected: that attempt proves
			// nothing, and the talk starts again on a new connection.
			var m *Monitor
			var errc <-chan error
			for attempt := 1; ; attempt++ {
				var peer net.Conn
				m, peer = newTestMonitor(t, limit)
				m.Start()
				errc = drain(m)
				if talk(peer, limit/5, 5) {
					break
				}
				select {
				case <-m.Dead(): // the write failed: the Monitor closed the socket
				case <-time.After(defaultTestTimeout):
					t.Fatal("a peer write failed with no detection")
				}
				var dpe *DeadPeerError
				if !errors.As(m.Err(), &dpe) || dpe.Silence < limit || attempt == 3 {
					t.Fatalf("attempt %d: the peer's talk was cut by %v", attempt, m.Err())
				}
				t.Logf("attempt %d: the talk stalled %v, past the limit; again", attempt, dpe.Silence)
			}

			select {
			case <-m.Dead():
			case <-time.After(limit + defaultTestTimeout):
				t.Fatalf("Dead() not closed %v after the peer went silent", limit+defaultTestTimeout)
			}
			observed := time.Since(m.LastRead())
			var dpe *DeadPeerError
			if err := m.Err(); !errors.As(err, &dpe) {
				t.Fatalf("Err() = %v, want a *DeadPeerError", err)
			}
			// dpe.Silence is measured by the timer callback itself, so it is the
			// detection latency free of this goroutine's own scheduling delay.
			t.Logf("limit %v: declared dead %v after the last read (%v over the limit; Dead() seen here after %v)",
				limit, dpe.Silence, dpe.Silence-limit, observed)
			if dpe.Limit != limit {
				t.Errorf("Err().Limit = %v, want %v", dpe.Limit, limit)
			}
			if dpe.Silence < limit || observed < limit {
				t.Errorf("declared dead after %v of silence (seen after %v), before the %v limit", dpe.Silence, observed, limit)
			}
			// Late is judged by when the Monitor armed the detecting timer,
			// from the last read: how late the runtime then ran it is the
			// scheduler's, not the Monitor's.
			if armed := armedAfterLastRead(m); armed > limit+detectionSlack {
				t.Errorf("detecting timer armed for %v after the last read, want <= %v (declared dead after %v of silence)",
					armed, limit+detectionSlack, dpe.Silence)
			}
			if dpe.Silence > observed {
				t.Errorf("Err().Silence = %v exceeds the silence observed after Dead(), %v", dpe.Silence, observed)
			}
			// Dead() is closed only after the socket: the reader must fail.
			select {
			case err := <-errc:
				if !errors.Is(err, ErrDeadPeer) {
					t.Errorf("reader error = %v, want one matching ErrDeadPeer", err)
				}
			case <-time.After(defaultTestTimeout):
				t.Fatalf("reader still blocked %v after detection", defaultTestTimeout)
			}
		})
	}
}

func TestMonitorUnblocksReadPromptly(t *testing.T) {
	const limit = 100 * time.Millisecond
	m, _ := newTestMonitor(t, limit)
	m.Start()
	readDone := make(chan time.Time, 1)
	readErr := make(chan error, 1)
	go func() {
		_, err := m.Read(make([]byte, 16))
		readDone <- time.Now()
		readErr <- err
	}()
	select {
	case <-m.Dead():
	case <-time.After(defaultTestTimeout):
		t.Fatalf("Dead() not closed within %v", defaultTestTimeout)
	}
	deadAt := time.Now()
	select {
	case at := <-readDone:
		// The socket is closed before Dead(), so the Read may even return first.
		if lag := at.Sub(deadAt); lag > promptBound {
			t.Errorf("blocked Read returned %v after Dead(), want <= %v", lag, promptBound)
		}
		if err := <-readErr; !errors.Is(err, ErrDeadPeer) {
			t.Errorf("Read error = %v, want one matching ErrDeadPeer", err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatalf("blocked Read did not return within %v of detection", defaultTestTimeout)
	}
	if _, err := m.Write([]byte("x")); !errors.Is(err, ErrDeadPeer) {
		t.Errorf("Write after detection error = %v, want one matching ErrDeadPeer", err)
	}
}

// healthyRun runs a Monitor with the given limit while its peer writes a byte
// every limit/2 and the owner keeps reading, for the given number of writes. It
// returns the Monitor, the number of writes and the elapsed time, or ok=false
// if the Monitor declared the peer dead.
func healthyRun(t *testing.T, limit time.Duration, writes int) (m *Monitor, wrote int, elapsed time.Duration, ok bool) {
	t.Helper()
	m, peer := newTestMonitor(t, limit)
	m.Start()
	errc := drain(m)
	tick := time.NewTicker(limit / 2)
	defer tick.Stop()
	start := time.Now()
	for wrote < writes {
		select {
		case <-m.Dead():
			t.Logf("declared dead after %d writes in %v: %v", wrote, time.Since(start), m.Err())
			return m, wrote, time.Since(start), false
		case err := <-errc:
			if m.Err() != nil { // detection closed the socket under the reader
				t.Logf("declared dead after %d writes in %v: %v", wrote, time.Since(start), m.Err())
				return m, wrote, time.Since(start), false
			}
			t.Fatalf("reader failed: %v", err)
		case <-tick.C:
			if _, err := peer.Write([]byte{0}); err != nil {
				t.Fatalf("peer write: %v", err)
			}
			wrote++
		}
	}
	return m, wrote, time.Since(start), m.Err() == nil
}

// healthyAttempts is how many runs a healthy-peer test makes before it fails.
// A detection there is either a Monitor bug, which repeats every run, or a
// writer or reader goroutine starved for limit/2 on a loaded machine, which
// does not; retrying tells them apart.
const healthyAttempts = 3

func TestMonitorNoFalseDetection(t *testing.T) {
	const (
		limit   = 200 * time.Millisecond
		periods = 10
	)
	for attempt := 1; attempt <= healthyAttempts; attempt++ {
		if _, _, _, ok := healthyRun(t, limit, 2*periods); ok {
			return
		}
	}
	t.Fatalf("healthy peer writing every %v declared dead in all %d runs", limit/2, healthyAttempts)
}

func TestMonitorIdleCost(t *testing.T) {
	// The limit leaves room for a writer goroutine starved by a loaded CI
	// machine; the cost per limit period is what is measured.
	const (
		limit = 300 * time.Millisecond
		run   = 3 * time.Second
	)
	for attempt := 1; attempt <= healthyAttempts; attempt++ {
		m, writes, elapsed, ok := healthyRun(t, limit, int(run/(limit/2)))
		if !ok {
			continue
		}
		fires := m.fires.Load()
		// Each one-byte write is at most one read, so writes bounds reads.
		bound := int64(elapsed/limit) + int64(writes) + 2
		t.Logf("%v idle-but-healthy, limit %v, %d one-byte reads: %d timer fires (%.2f per limit period), bound %d",
			elapsed.Round(time.Millisecond), limit, writes, fires, float64(fires)/float64(elapsed/limit), bound)
		if fires > bound {
			t.Errorf("timer fired %d times, want <= %d", fires, bound)
		}
		if fires == 0 {
			t.Errorf("timer never fired in %v with a %v limit", elapsed, limit)
		}
		return
	}
	t.Fatalf("healthy peer writing every %v declared dead in all %d runs", limit/2, healthyAttempts)
}

func TestMonitorNoDetectionBeforeStart(t *testing.T) {
	const limit = 50 * time.Millisecond
	m, _ := newTestMonitor(t, limit)
	select {
	case <-m.Dead():
		t.Fatalf("declared dead without Start: %v", m.Err())
	case <-time.After(shortTimeout):
	}
	if m.fires.Load() != 0 {
		t.Fatalf("timer fired %d times without Start", m.fires.Load())
	}
}

func TestMonitorStartMeasuresFromLastRead(t *testing.T) {
	const limit = 400 * time.Millisecond
	m, peer := newTestMonitor(t, limit)
	if _, err := peer.Write([]byte("handshake")); err != nil {
		t.Fatalf("peer write: %v", err)
	}
	if _, err := m.Read(make([]byte, 64)); err != nil {
		t.Fatalf("read: %v", err)
	}
	time.Sleep(limit / 2)
	m.Start()
	select {
	case <-m.Dead():
	case <-time.After(defaultTestTimeout):
		t.Fatalf("Dead() not closed within %v", defaultTestTimeout)
	}
	// Measured from Start, the silence at detection would be limit*3/2.
	var dpe *DeadPeerError
	if !errors.As(m.Err(), &dpe) {
		t.Fatalf("Err() = %v, want a *DeadPeerError", m.Err())
	}
	if armed := armedAfterLastRead(m); armed > limit+detectionSlack {
		t.Fatalf("detecting timer armed for %v after the last read, want <= %v (declared dead after %v of silence)",
			armed, limit+detectionSlack, dpe.Silence)
	}
}

// talk writes a frame to peer every interval, count times, and reports false
// if a write failed.
func talk(peer net.Conn, interval time.Duration, count int) bool {
	for i := 0; i < count; i++ {
		if _, err := peer.Write([]byte("frame")); err != nil {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// armedAfterLastRead returns, once m has declared the peer dead, how long
// after the last read the timer that detected it was due: the Monitor's own
// timing, free of the runtime's lateness in running the timer. A read the
// reader goroutine stamped only after the timer was armed makes it shorter,
// so it bounds lateness, not earliness (DeadPeerError.Silence does that).
func armedAfterLastRead(m *Monitor) time.Duration {
	return time.Duration(m.dueAt.Load() - m.lastRead.Load()>>1)
}

func TestMonitorStartIdempotent(t *testing.T) {
	m, _ := newTestMonitor(t, time.Hour)
	m.Start()
	first := m.timer
	m.Start()
	if m.timer != first {
		t.Fatalf("second Start replaced the timer")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.Start()
	if m.timer != first {
		t.Fatalf("Start after Close replaced the timer")
	}
}

func TestMonitorStartAfterCloseDoesNothing(t *testing.T) {
	m, _ := newTestMonitor(t, time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.Start()
	if m.timer != nil {
		t.Fatalf("Start after Close armed a timer")
	}
}

func TestMonitorRecordsActivity(t *testing.T) {
	m, peer := newTestMonitor(t, time.Hour)
	if !m.LastRead().IsZero() || !m.LastWrite().IsZero() {
		t.Fatalf("LastRead() = %v, LastWrite() = %v before any I/O, want zero", m.LastRead(), m.LastWrite())
	}
	before := time.Now()
	if _, err := m.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := io.ReadFull(peer, make([]byte, 4)); err != nil {
		t.Fatalf("peer read: %v", err)
	}
	if _, err := peer.Write([]byte("pong")); err != nil {
		t.Fatalf("peer write: %v", err)
	}
	if _, err := io.ReadFull(m, make([]byte, 4)); err != nil {
		t.Fatalf("read: %v", err)
	}
	after := time.Now()
	for name, got := range map[string]time.Time{"LastWrite": m.LastWrite(), "LastRead": m.LastRead()} {
		if got.Before(before) || got.After(after) {
			t.Errorf("%s() = %v, want within [%v, %v]", name, got, before, after)
		}
	}
	if m.LastRead().Before(m.LastWrite()) {
		t.Errorf("LastRead() %v before LastWrite() %v, but the read came after the write", m.LastRead(), m.LastWrite())
	}
}

func TestMonitorFailedReadIsNotActivity(t *testing.T) {
	m, _ := newTestMonitor(t, time.Hour)
	if err := m.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	_, err := m.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline = %v, want a timeout net.Error passed through", err)
	}
	if !m.LastRead().IsZero() {
		t.Fatalf("LastRead() = %v after a failed read, want zero", m.LastRead())
	}
}

func TestMonitorDelegates(t *testing.T) {
	client, _ := tcpPair(t)
	m, err := NewMonitor(client, time.Hour)
	if err != nil {
		t.Fatalf("NewMonitor: %v", err)
	}
	defer m.Close()
	var _ net.Conn = m
	if m.LocalAddr().String() != client.LocalAddr().String() {
		t.Errorf("LocalAddr() = %v, want %v", m.LocalAddr(), client.LocalAddr())
	}
	if m.RemoteAddr().String() != client.RemoteAddr().String() {
		t.Errorf("RemoteAddr() = %v, want %v", m.RemoteAddr(), client.RemoteAddr())
	}
	for name, set := range map[string]func(time.Time) error{
		"SetDeadline": m.SetDeadline, "SetReadDeadline": m.SetReadDeadline, "SetWriteDeadline": m.SetWriteDeadline,
	} {
		if err := set(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestMonitorClose(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		closeErr error
		start    bool
		detect   bool
	}{
		{"before Start", nil, false, false},
		{"after Start", nil, true, false},
		{"close error returned once", errBoom, true, false},
		{"after detection", nil, true, true},
		{"close error after detection", errBoom, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := tcpPair(t)
			cc := &countingConn{Conn: client, closeErr: tc.closeErr}
			limit := time.Hour
			if tc.detect {
				limit = time.Millisecond
			}
			m, err := NewMonitor(cc, limit)
			if err != nil {
				t.Fatalf("NewMonitor: %v", err)
			}
			if tc.start {
				m.Start()
			}
			if tc.detect {
				select {
				case <-m.Dead():
				case <-time.After(defaultTestTimeout):
					t.Fatalf("Dead() not closed within %v", defaultTestTimeout)
				}
			}
			if err := m.Close(); !errors.Is(err, tc.closeErr) || (err != nil) != (tc.closeErr != nil) {
				t.Errorf("first Close() = %v, want %v", err, tc.closeErr)
			}
			if err := m.Close(); err != nil {
				t.Errorf("second Close() = %v, want nil", err)
			}
			if n := cc.closes.Load(); n != 1 {
				t.Errorf("wrapped conn closed %d times, want 1", n)
			}
			if _, err := client.Read(make([]byte, 1)); err == nil {
				t.Errorf("wrapped conn still readable after Close")
			}
			if tc.detect {
				if !errors.Is(m.Err(), ErrDeadPeer) {
					t.Errorf("Err() = %v after detection and Close, want ErrDeadPeer", m.Err())
				}
				return
			}
			if m.Err() != nil {
				t.Errorf("Err() = %v after a plain Close, want nil", m.Err())
			}
			select {
			case <-m.Dead():
				t.Errorf("Close closed Dead(); only detection should")
			default:
			}
		})
	}
}

func TestMonitorCloseRacesDetection(t *testing.T) {
	const rounds = 50
	for i := 0; i < rounds; i++ {
		client, _ := tcpPair(t)
		cc := &countingConn{Conn: client}
		// A limit near the time it takes to start the goroutines below makes
		// Close and detection overlap in some rounds.
		m, err := NewMonitor(cc, time.Duration(i)*10*time.Microsecond+time.Microsecond)
		if err != nil {
			t.Fatalf("NewMonitor: %v", err)
		}
		m.Start()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for j := 0; j < cap(errs); j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- m.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: Close() = %v, want nil", i, err)
			}
		}
		if n := cc.closes.Load(); n != 1 {
			t.Fatalf("round %d: wrapped conn closed %d times, want 1", i, n)
		}
		// Either outcome is fine, but it must be consistent.
		select {
		case <-m.Dead():
			if m.Err() == nil {
				t.Fatalf("round %d: Dead() closed but Err() is nil", i)
			}
		default:
			if m.Err() != nil {
				t.Fatalf("round %d: Err() = %v but Dead() open", i, m.Err())
			}
		}
	}
}

// TestMonitorOwnsReadDeadlineOnceStarted: amqp091-go's heartbeater sets a read
// deadline of 1.5x the heartbeat after every frame. Once started, the Monitor
// ignores it, so the connection ends only by the Monitor's own verdict (a
// *DeadPeerError at its limit), never by a bare i/o timeout first. Before
// Start, deadlines still apply: they bound the handshake.
func TestMonitorOwnsReadDeadlineOnceStarted(t *testing.T) {
	const limit = 300 * time.Millisecond
	m, _ := newTestMonitor(t, limit)
	m.Start()
	// A pending deadline set before Start is dropped too: set one now that
	// has already passed, as the heartbeater would after a late frame.
	if err := m.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	begin := time.Now()
	err := <-drain(m)
	var dp *DeadPeerError
	if !errors.As(err, &dp) {
		t.Fatalf("Read after %v = %v, want the Monitor's *DeadPeerError (the read deadline must not end it first)", time.Since(begin), err)
	}
	if took := time.Since(begin); took < limit*9/10 {
		t.Fatalf("dead after %v, before the %v limit", took, limit)
	}
}
