package conn

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// newUnreadySupervisor returns a supervisor that never connects (its URL's
// port is closed), closed at cleanup; hooks and consumers register on it
// without a connection.
func newUnreadySupervisor(t *testing.T, onEvent func(Event)) *Supervisor {
	t.Helper()
	s, err := New(Options{
		URLs:           []string{closedPortURL(t)},
		Reconnect:      reconnect.Policy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:         discardLogger(),
		OnEvent:        onEvent,
		StallThreshold: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNow(t, s) })
	return s
}

func okHandler(context.Context, amqp.Delivery) error { return nil }

func TestConsumeRejectsInvalidArguments(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	tests := []struct {
		name string
		q    *Queue
		h    Handler
		opts ConsumerOptions
	}{
		{"nil queue", nil, okHandler, ConsumerOptions{}},
		{"nil handler", NamedQueue("q"), nil, ConsumerOptions{}},
		{"negative prefetch", NamedQueue("q"), okHandler, ConsumerOptions{Prefetch: -1}},
		{"NamedQueue with no name", NamedQueue(""), okHandler, ConsumerOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.Consume(context.Background(), tt.q, tt.h, tt.opts)
			if !errors.Is(err, ErrInvalidConsumerOptions) || c != nil {
				t.Errorf("Consume = %v, %v; want ErrInvalidConsumerOptions", c, err)
			}
		})
	}
	s.mu.Lock()
	n := len(s.hooks)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d hooks registered by invalid Consume calls, want 0", n)
	}
}

func TestConsumeOnClosedSupervisor(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	closeNow(t, s)
	c, err := s.Consume(context.Background(), NamedQueue("q"), okHandler, ConsumerOptions{})
	if !errors.Is(err, ErrClosed) || c != nil {
		t.Errorf("Consume after Close = %v, %v; want ErrClosed", c, err)
	}
}

func TestConsumerCloseIsIdempotentAndUnregisters(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	c, err := s.Consume(context.Background(), NamedQueue("q"), okHandler, ConsumerOptions{Name: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "idle" {
		t.Errorf("Name() = %q, want idle", c.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := c.Close(ctx); err != nil {
			t.Fatalf("Close #%d = %v", i+1, err)
		}
	}
	s.mu.Lock()
	n := len(s.hooks)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d hooks left after Consumer.Close, want 0", n)
	}
}

func TestSupervisorCloseClosesConsumers(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	var consumers []*Consumer
	for i := 0; i < 3; i++ {
		c, err := s.Consume(context.Background(), NamedQueue("q"), okHandler, ConsumerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	closeNow(t, s)
	for i, c := range consumers {
		select {
		case <-c.done:
		default:
			t.Errorf("consumer %d still runs after Supervisor.Close", i)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("consumer %d: Close after Supervisor.Close = %v", i, err)
		}
	}
}
