package brokertest

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

// Timeouts: the machine is shared, so bounds are generous.
const (
	// testTimeout bounds one test.
	testTimeout = 90 * time.Second
	// closeTimeout bounds closing a supervisor.
	closeTimeout = 10 * time.Second
)

// TestMain finds or starts a broker, runs the tests, and checks for leaked
// goroutines (broker.Main runs goleak).
func TestMain(m *testing.M) { broker.Main(m) }

// supervisor starts a Supervisor on b named name with opts, closed at cleanup.
func supervisor(t *testing.T, b *broker.Broker, name string, opts conn.Options) *conn.Supervisor {
	t.Helper()
	opts.URLs = []string{b.URL}
	opts.ConnectionName = name
	opts.Reconnect = testkit.FastPolicy()
	opts.Logger = testkit.QuietLogger(t)
	sup, err := conn.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSupervisor(t, sup) })
	return sup
}

func closeSupervisor(t *testing.T, sup *conn.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := sup.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// declareQueue declares a durable queue on sup, deleted (with the given
// extra queues) at cleanup through a connection of its own.
func declareQueue(ctx context.Context, t *testing.T, b *broker.Broker, sup *conn.Supervisor, name string, extra ...string) *conn.Queue {
	t.Helper()
	q := &conn.Queue{Name: name, Durable: true}
	if _, err := sup.DeclareTopology(ctx, conn.Topology{Queues: []*conn.Queue{q}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(closeTimeout)})
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return
		}
		for _, n := range append([]string{name}, extra...) {
			_, _ = ch.QueueDelete(n, false, false, false)
		}
	})
	return q
}

// waitReconnected waits, bounded by ctx, until sup is Ready after its
// n-th reconnection.
func waitReconnected(ctx context.Context, t *testing.T, sup *conn.Supervisor, n uint64) {
	t.Helper()
	for {
		st := sup.Stats()
		if st.State == conn.Ready && st.Reconnects >= n {
			return
		}
		if !sup.WaitForStateChange(ctx, st.State) {
			t.Fatalf("not Ready after reconnection %d: %v (stats %+v)", n, ctx.Err(), sup.Stats())
		}
	}
}

// settled is a middleware that sends each delivery's body on ch once
// the middleware inside it has seen it settled.
func settled(ch chan<- string) conn.HandlerMiddleware {
	return func(next conn.HandleFunc) conn.HandleFunc {
		return func(ctx context.Context, info conn.DeliveryInfo, d amqp.Delivery) conn.HandleResult {
			r := next(ctx, info, d)
			ch <- string(d.Body)
			return r
		}
	}
}

// receive takes n bodies from ch, bounded by ctx.
func receive(ctx context.Context, t *testing.T, ch <-chan string, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case s := <-ch:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("received %d of %d deliveries: %v", len(got), n, ctx.Err())
		}
	}
	return got
}
