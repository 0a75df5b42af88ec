package rabbitmq4_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 60 * time.Second
	// closeTimeout bounds closing a client connection in cleanup.
	closeTimeout = 5 * time.Second
)

// denyTransientNonExclusive makes the node refuse transient non-exclusive
// queues, as a future RabbitMQ will by default.
const denyTransientNonExclusive = "deprecated_features.permit.transient_nonexcl_queues = false\n"

func TestMain(m *testing.M) {
	broker.MainWith(m, broker.Options{Version: broker.Version40, Config: denyTransientNonExclusive})
}

// uniqueName returns prefix plus a random suffix.
var uniqueName = testkit.UniqueName

func faultCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial opens a raw amqp091-go connection, closed at cleanup.
func dial(t testing.TB, url string) *amqp.Connection {
	t.Helper()
	c, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(defaultTestTimeout)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseDeadline(time.Now().Add(closeTimeout)) })
	return c
}

// channel opens a channel on c.
func channel(t testing.TB, c *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}
