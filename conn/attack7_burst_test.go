package conn

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// attack7Alternating returns n notifications alternating blocked,
// unblocked, ... starting with blocked: odd n ends blocked.
func attack7Alternating(n int) []bool {
	seq := make([]bool, n)
	for i := range seq {
		seq[i] = i%2 == 0
	}
	return seq
}

// The connection's FIRST blocked notifications arrive as a burst of 17 in
// one socket read. Nobody takes from ss.blocks until amqp091-go's reader
// calls Read again (takeBlocked runs only before a read; the loop is
// parked), so the reader waits 5 s on the 17th send and then drops it. The
// broker's last word is connection.blocked: Blocked() must say so, and
// promptly.
func TestAttack7FirstBurstOver16LosesLastWord(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	fc := latestFakeConn(t, b)
	start := time.Now()
	attack6BlockedBurst(t, fc, attack7Alternating(17)...)
	if attack6WaitBlocked(t, s, true, time.Second) {
		return
	}
	if attack6WaitBlocked(t, s, true, 7*time.Second) {
		t.Fatalf("Blocked() took %v to turn true after a first burst of 17 notifications: amqp091-go's reader stalled on a full ss.blocks", time.Since(start))
	}
	t.Fatalf("Blocked() still false %v after a first burst of 17 notifications ending connection.blocked: the 17th was dropped by amqp091-go after 5 s (Stats().BlockedTimes=%d)",
		time.Since(start), s.Stats().BlockedTimes)
}

// The same first burst with BlockedTimeout: the broker keeps the connection
// blocked, so EventBlockedTimeout must come about BlockedTimeout later.
func TestAttack7FirstBurstOver16BlockedTimeoutNeverFires(t *testing.T) {
	b := startPubFakeBroker(t)
	events := newEventLog()
	s, err := New(Options{URLs: []string{b.url()}, Reconnect: fastPolicy(), Logger: discardLogger(),
		OnEvent: events.handle, BlockedTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNow(t, s) })
	waitReadyAgain(t, s, 1)
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, attack7Alternating(19)...)
	timeout := time.After(9 * time.Second)
	for {
		select {
		case e := <-events.ch:
			if e.Kind == EventBlockedTimeout {
				return
			}
		case <-timeout:
			t.Fatalf("the broker's last word was connection.blocked (first burst of 19) but no EventBlockedTimeout within 9s "+
				"with BlockedTimeout 1s; Blocked()=%v", s.Blocked())
		}
	}
}

// attack7Subprocess runs the test named name in a child process with
// ATTACK7_CHILD=1 and returns its combined output and whether it failed.
func attack7Subprocess(t *testing.T, name string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "ATTACK7_CHILD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err != nil
}

// A first burst of 17 leaves amqp091-go's reader waiting to send the 17th
// on ss.blocks with nobody taking. The peer dies meanwhile and a write
// fails on another goroutine: amqp091-go shuts the connection down there
// and closes ss.blocks under the waiting reader, "send on closed channel",
// a panic that kills the process. (attack6's test with a burst of 6; the
// fix of fe515b7 only helps once a first notification was taken.)
func TestAttack7FirstBurstOver16ThenWriteFailureDoesNotPanic(t *testing.T) {
	if os.Getenv("ATTACK7_CHILD") != "1" {
		out, failed := attack7Subprocess(t, "TestAttack7FirstBurstOver16ThenWriteFailureDoesNotPanic")
		if bytes.Contains([]byte(out), []byte("send on closed channel")) {
			t.Fatalf("the process panicked: send on closed channel (amqp091-go's reader)\n%s", attack7Tail(out, 3000))
		}
		if failed {
			t.Fatalf("child failed:\n%s", attack7Tail(out, 3000))
		}
		return
	}
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, attack7Alternating(17)...)
	time.Sleep(100 * time.Millisecond) // the reader parses the burst, waits on the 17th
	fc.kill()
	time.Sleep(100 * time.Millisecond) // the peer's FIN/RST arrives
	live := s.live.Load()
	if live == nil {
		t.Skip("the connection was already lost")
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := live.conn.Channel()
			if err == nil {
				ch.Close()
			}
		}()
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	time.Sleep(6 * time.Second) // the reader's 5 s wait ends
	waitReadyAgain(t, s, 2)
}

func attack7Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
