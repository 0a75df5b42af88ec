package heartbeat

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestOnCloseOnceAfterClose: the SetOnClose function runs once, on the
// first Close, after the conn is closed; later Closes do not run it again.
func TestOnCloseOnceAfterClose(t *testing.T) {
	m, _ := newTestMonitor(t, time.Hour)
	var calls atomic.Int32
	var closedFirst atomic.Bool
	m.SetOnClose(func() {
		calls.Add(1)
		closedFirst.Store(m.Closed())
	})
	m.Start()
	if m.Closed() {
		t.Fatal("Closed() before Close")
	}
	for i := 0; i < 3; i++ {
		m.Close()
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("onClose ran %d times, want 1", got)
	}
	if !closedFirst.Load() {
		t.Fatal("onClose ran before the conn was closed")
	}
}

// TestOnCloseAfterVerdict: a dead-peer verdict runs the SetOnClose function
// once Dead() is closed, so whoever it wakes finds the verdict, and a Close
// after it does not run it again.
func TestOnCloseAfterVerdict(t *testing.T) {
	m, _ := newTestMonitor(t, 50*time.Millisecond)
	sawDead := make(chan bool, 2)
	m.SetOnClose(func() {
		select {
		case <-m.Dead():
			sawDead <- true
		default:
			sawDead <- false
		}
	})
	m.Start()
	select {
	case dead := <-sawDead:
		if !dead {
			t.Fatal("onClose ran before Dead() was closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no verdict, or onClose did not run")
	}
	m.Close()
	select {
	case <-sawDead:
		t.Fatal("onClose ran twice")
	case <-time.After(20 * time.Millisecond):
	}
}

// TestBeforeReadRunsBeforeEachRead: the SetBeforeRead function runs on the
// reading goroutine before every Read, and no more once cleared.
func TestBeforeReadRunsBeforeEachRead(t *testing.T) {
	m, peer := newTestMonitor(t, time.Hour)
	var calls atomic.Int32
	m.SetBeforeRead(func() { calls.Add(1) })
	buf := make([]byte, 8)
	for i := 1; i <= 3; i++ {
		if _, err := peer.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got := calls.Load(); got != int32(i) {
			t.Fatalf("after %d reads beforeRead ran %d times", i, got)
		}
	}
	m.SetBeforeRead(nil)
	if _, err := peer.Write([]byte{9}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Read(buf); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("beforeRead ran after it was cleared (%d calls)", got)
	}
}
