package heartbeat

import (
	"errors"
	"net"
	"testing"
	"time"
)

// readAll keeps reading from m until it fails, the way amqp091-go's reader
// does, and records each chunk's size.
func readChunks(m *Monitor) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := m.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

// writeFrames writes frame every interval, count times, as a broker would.
func writeFrames(t *testing.T, peer net.Conn, frame []byte, interval time.Duration, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		if _, err := peer.Write(frame); err != nil {
			t.Fatalf("peer write: %v", err)
		}
		time.Sleep(interval)
	}
}

// TestIdleLimitAfterHeartbeat: after a heartbeat frame the shorter idle limit
// applies; after any other data the general limit does.
func TestIdleLimitAfterHeartbeat(t *testing.T) {
	// The cadence below writes a heartbeat every idle/4: a sleep overrunning
	// by 3/4 idle makes a real silence, rightly detected. 200ms idle left a
	// loaded host 150ms, too little; 500ms leaves it 375ms.
	const limit, idle = 2 * time.Second, 500 * time.Millisecond
	tests := []struct {
		name      string
		lastFrame []byte
		wantLimit time.Duration
	}{
		{"after a heartbeat frame", heartbeatFrame[:], idle},
		{"after a data frame", []byte{1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 40, 0xCE}, limit},
		{"after a heartbeat glued to data", append(heartbeatFrame[:], 1, 0, 1), limit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, peer := tcpPair(t)
			m, err := NewMonitor(client, limit)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.SetIdleLimit(idle)
			reads := readChunks(m)
			m.Start()
			writeFrames(t, peer, heartbeatFrame[:], idle/4, 4) // the idle cadence: no detection
			if _, err := peer.Write(tt.lastFrame); err != nil {
				t.Fatal(err)
			}
			select {
			case <-m.Dead():
			case <-time.After(limit + defaultTestTimeout):
				t.Fatal("silence never detected")
			}
			var dp *DeadPeerError
			if !errors.As(m.Err(), &dp) {
				t.Fatalf("Err() = %v, want *DeadPeerError", m.Err())
			}
			if dp.Limit != tt.wantLimit {
				t.Errorf("detected with limit %v, want %v", dp.Limit, tt.wantLimit)
			}
			if dp.Silence < tt.wantLimit {
				t.Errorf("detected after %v of silence, want at least %v", dp.Silence, tt.wantLimit)
			}
			// Late is judged by when the Monitor armed the timer that
			// detected, measured from the last read: how late the runtime
			// then ran the timer is the scheduler's, not the Monitor's.
			if armed := armedAfterLastRead(m); armed > tt.wantLimit+detectionSlack {
				t.Errorf("detecting timer armed for %v after the last read, want <= %v (detected after %v of silence)",
					armed, tt.wantLimit+detectionSlack, dp.Silence)
			}
			<-reads
		})
	}
}

// TestIdleHeartbeatsDoNotRunTimer: while the broker's heartbeat frames arrive
// inside the idle limit, each pushes the silence timer forward, so the timer
// never runs (an idle connection then costs no timer goroutine per frame);
// once they stop, the idle limit still detects the silence.
func TestIdleHeartbeatsDoNotRunTimer(t *testing.T) {
	const (
		limit  = time.Second
		idle   = 300 * time.Millisecond
		frames = 20
		// A frame more than idle/3 late on a loaded machine lets the timer
		// run once; a Monitor that does not re-arm runs it about once per
		// frame.
		maxFires = 3
	)
	for attempt := 1; attempt <= healthyAttempts; attempt++ {
		client, peer := tcpPair(t)
		m, err := NewMonitor(client, limit)
		if err != nil {
			t.Fatal(err)
		}
		m.SetIdleLimit(idle)
		reads := readChunks(m)
		m.Start()
		writeFrames(t, peer, heartbeatFrame[:], idle/3, frames)
		fires := m.fires.Load()
		select {
		case <-m.Dead():
			t.Logf("attempt %d: declared dead while heartbeats flowed (a starved writer): %v", attempt, m.Err())
			m.Close()
			<-reads
			continue
		default:
		}
		t.Logf("%d heartbeat frames every %v, idle limit %v: the timer ran %d times", frames, idle/3, idle, fires)
		if fires > maxFires {
			t.Errorf("timer ran %d times while heartbeats flowed, want <= %d", fires, maxFires)
		}
		select {
		case <-m.Dead():
		case <-time.After(limit + defaultTestTimeout):
			t.Fatal("silence after the last heartbeat never detected")
		}
		var dp *DeadPeerError
		if !errors.As(m.Err(), &dp) || dp.Limit != idle {
			t.Errorf("Err() = %v, want a *DeadPeerError with the idle limit %v", m.Err(), idle)
		}
		m.Close()
		<-reads
		return
	}
	t.Fatalf("healthy peer declared dead in all %d runs", healthyAttempts)
}
