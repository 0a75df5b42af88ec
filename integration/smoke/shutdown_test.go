package smoke

import (
	"context"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// TestShutdownSeenByClient: stop_app closes every connection with 320
// CONNECTION_FORCED (reason shutdown) and refuses new ones until start_app;
// a node restart does the same, then accepts connections on the same port.
// It runs on every release make test covers; the README quotes it. Both
// 3.10.8 and 4.0.5 may reset the socket right after their connection.close:
// a client that writes then (amqp091-go's close-ok or a heartbeat) sees the
// reset, which amqp091-go reports as 501 instead of the 320.
func TestShutdownSeenByClient(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*defaultTestTimeout)
	defer cancel()
	for _, tt := range []struct {
		name  string
		fault func() error
		after func() error
	}{
		{"stop_app", func() error { return b.Faults.StopApp(ctx) }, func() error { return b.Faults.StartApp(ctx) }},
		{"restart", func() error { return b.Faults.Restart(ctx) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, b.URL, uniqueName("smoke-"+tt.name), amqp.Config{})
			closed := c.NotifyClose(make(chan *amqp.Error, 1))
			if err := tt.fault(); err != nil {
				t.Fatal(err)
			}
			e := awaitClose(t, closed)
			t.Logf("%s on RabbitMQ %s closed the connection: %v", tt.name, b.Version, e)
			if !shutdownClose(e) {
				t.Errorf("closed with %v; want 320 CONNECTION_FORCED naming shutdown, or the socket reset after it", e)
			}
			if tt.after == nil {
				return
			}
			_, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(eventTimeout)})
			t.Logf("dialing while stopped: %v", err)
			if err == nil {
				t.Errorf("a dial succeeded while the application was stopped")
			}
			if err := tt.after(); err != nil {
				t.Fatal(err)
			}
			dial(t, b.URL, uniqueName("smoke-after-"+tt.name), amqp.Config{})
		})
	}
}

// shutdownClose reports whether e is how a broker shutting down closes a
// connection: 320 CONNECTION_FORCED naming shutdown, or the reset of the
// socket that follows it.
func shutdownClose(e *amqp.Error) bool {
	switch {
	case e == nil:
		return false
	case e.Code == amqp.ConnectionForced:
		return strings.Contains(e.Reason, "shutdown")
	default:
		return e.Code == amqp.FrameError && strings.Contains(e.Reason, "connection reset by peer")
	}
}
