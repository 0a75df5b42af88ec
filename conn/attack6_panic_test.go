package conn

import (
	"sync"
	"testing"
	"time"
)

// A burst of connection.blocked/unblocked parsed out of one read leaves
// amqp091-go's reader waiting (up to 5 s per notification) to send the
// fifth on ss.blocks. If the socket dies meanwhile and a write fails on
// another goroutine, amqp091-go's send shuts the connection down there and
// closes ss.blocks under the waiting reader: "send on closed channel", a
// panic on amqp091-go's reader goroutine that kills the process.
func TestAttack6BlockedBurstThenWriteFailureDoesNotPanic(t *testing.T) {
	b := startPubFakeBroker(t)
	s := startFakeSupervisor(t, b, nil)
	fc := latestFakeConn(t, b)
	attack6BlockedBurst(t, fc, true, false, true, false, true, false)
	time.Sleep(100 * time.Millisecond) // the reader parses the burst
	attack6KillThenFailWrites(t, s, fc)
	waitReadyAgain(t, s, 2)
}

// attack6KillThenFailWrites kills the live connection's socket from the
// broker's side and writes to it from other goroutines until a write fails
// there, so that amqp091-go shuts the connection down on a goroutine other
// than its reader.
func attack6KillThenFailWrites(t *testing.T, s *Supervisor, fc *pubFakeConn) {
	t.Helper()
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
			// Writes to the dead socket; one of them fails.
			ch, err := live.conn.Channel()
			if err == nil {
				ch.Close()
			}
		}()
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
}
