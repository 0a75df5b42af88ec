package conn

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
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
	s := startFakeSupervisorWith(t, b, Options{OnEvent: events.handle, BlockedTimeout: time.Second})
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, attack7Alternating(19)...)
	if !events.await(EventBlockedTimeout, 9*time.Second) {
		t.Fatalf("the broker's last word was connection.blocked (first burst of 19) but no EventBlockedTimeout within 9s "+
			"with BlockedTimeout 1s; Blocked()=%v", s.Blocked())
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

// attack7InChild reports whether the test runs in the child process that
// attack7Subprocess starts. In the parent it runs the calling test there
// and fails it on a panic (send on closed channel) or any other failure.
func attack7InChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv("ATTACK7_CHILD") == "1" {
		return true
	}
	out, failed := attack7Subprocess(t, t.Name())
	if strings.Contains(out, "send on closed channel") {
		t.Fatalf("the process panicked: send on closed channel (amqp091-go's reader)\n%s", attack7Tail(out, 3000))
	}
	if failed {
		t.Fatalf("child failed:\n%s", attack7Tail(out, 3000))
	}
	return false
}

// A first burst of 17 leaves amqp091-go's reader waiting to send the 17th
// on ss.blocks with nobody taking. The peer dies meanwhile and a write
// fails on another goroutine: amqp091-go shuts the connection down there
// and closes ss.blocks under the waiting reader, "send on closed channel",
// a panic that kills the process. (attack6's test with a burst of 6; the
// fix of fe515b7 only helps once a first notification was taken.)
func TestAttack7FirstBurstOver16ThenWriteFailureDoesNotPanic(t *testing.T) {
	if !attack7InChild(t) {
		return
	}
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, attack7Alternating(17)...)
	time.Sleep(100 * time.Millisecond) // the reader parses the burst, waits on the 17th
	attack6KillThenFailWrites(t, s, fc)
	time.Sleep(6 * time.Second) // the reader's 5 s wait ends
	waitReadyAgain(t, s, 2)
}

func attack7Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
