package heartbeat

import (
	"errors"
	"net"
	"testing"
	"time"
)

// slowDeadlineConn delays a non-zero SetReadDeadline before applying it: the
// goroutine that calls it (amqp091-go's heartbeater) is preempted between
// Monitor.SetReadDeadline's started check and the wrapped conn's call.
type slowDeadlineConn struct {
	net.Conn
	entered chan struct{}
}

func (c *slowDeadlineConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		close(c.entered)
		time.Sleep(100 * time.Millisecond)
	}
	return c.Conn.SetReadDeadline(t)
}

// TestAttack4HeartbeaterDeadlineStraddlesStart: amqp091-go's heartbeater sets
// a read deadline (3x the heartbeat) after the open-ok frame, concurrently
// with dial's m.Start(). SetReadDeadline checks m.started, then calls the
// conn; Start sets started, then clears the deadline. If the heartbeater is
// preempted between its check and its call, its deadline lands after Start's
// clear, and since every later SetReadDeadline is ignored it is never renewed:
// a healthy connection, heartbeats flowing, fails with a bare i/o timeout at
// that fixed time (no DeadPeerError). It fails if a Read fails while the peer
// keeps sending heartbeats.
func TestAttack4HeartbeaterDeadlineStraddlesStart(t *testing.T) {
	client, server := tcpPair(t)
	sc := &slowDeadlineConn{Conn: client, entered: make(chan struct{})}
	m, err := NewMonitor(sc, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	go func() { _ = m.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) }() // the heartbeater
	<-sc.entered
	m.Start()
	errc := drain(m)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := server.Write(heartbeatFrame[:]); err != nil {
					return
				}
			}
		}
	}()
	select {
	case err := <-errc:
		var dpe *DeadPeerError
		t.Fatalf("a healthy connection (heartbeat every 50ms, limit 2s) failed: %v (DeadPeerError: %v)", err, errors.As(err, &dpe))
	case <-time.After(time.Second):
	}
}
