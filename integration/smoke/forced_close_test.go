package smoke

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

func TestForcedClose(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	name := uniqueName("smoke-forced")
	conn := dial(t, b.URL, name, amqp.Config{})
	other := dial(t, b.URL, uniqueName("smoke-bystander"), amqp.Config{})
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	start := time.Now()
	if err := b.Faults.CloseConnection(ctx, name); err != nil {
		t.Fatal(err)
	}
	e := awaitClose(t, closed)
	t.Logf("closed %v after CloseConnection was called: %v", time.Since(start).Round(time.Millisecond), e)
	if e == nil || e.Code != amqp.ConnectionForced || !e.Server {
		t.Fatalf("NotifyClose = %v, want a server-sent 320 CONNECTION_FORCED", e)
	}
	if other.IsClosed() {
		t.Error("a connection with another name was closed too")
	}
	if err := b.Faults.CloseConnection(ctx, name); !errors.Is(err, broker.ErrNoConnection) {
		t.Errorf("closing an already closed name = %v, want ErrNoConnection", err)
	}
}
