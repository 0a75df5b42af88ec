package smoke

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

func TestMemoryAlarmBlocksPublisher(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	conn := dial(t, b.URL, uniqueName("smoke-alarm"), amqp.Config{})
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := b.Faults.SetMemoryAlarm(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Registered after dial's cleanup, so it runs first: a connection the
	// broker blocks cannot complete its close handshake.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		if err := b.Faults.SetMemoryAlarm(ctx, false); err != nil {
			t.Errorf("clearing the memory alarm: %v", err)
		}
	})
	// The broker blocks a connection only when it publishes during the alarm.
	if err := ch.PublishWithContext(ctx, "", uniqueName("smoke-alarm-nowhere"), false, false,
		amqp.Publishing{Body: []byte("blocked?")}); err != nil {
		t.Fatal(err)
	}
	if got := awaitBlocking(t, blocked); !got.Active {
		t.Fatalf("first Blocking = %+v, want Active", got)
	}
	t.Logf("blocked %v after SetMemoryAlarm(true) was called", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := b.Faults.SetMemoryAlarm(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := awaitBlocking(t, blocked); got.Active {
		t.Fatalf("second Blocking = %+v, want not Active", got)
	}
	t.Logf("unblocked %v after SetMemoryAlarm(false) was called", time.Since(start).Round(time.Millisecond))
}

func awaitBlocking(t *testing.T, ch <-chan amqp.Blocking) amqp.Blocking {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	select {
	case b := <-ch:
		return b
	case <-timer.C:
		t.Fatalf("no connection.blocked/unblocked within %v", eventTimeout)
		return amqp.Blocking{}
	}
}
