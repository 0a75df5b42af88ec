package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/reconnect"
)

// TestServerNamedQueueFollowsReconnects: a topology with a server-named
// queue bound to an exchange survives 5 reconnects: each connection gets a
// fresh queue name, CurrentName follows it, the binding and the consumer
// follow it, and a message published to the exchange arrives every time.
func TestServerNamedQueueFollowsReconnects(t *testing.T) {
	const reconnects = 5
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url := newKiller(t, b, user, pass)
	adm := newAdmin(t, b)
	exchange := uniqueName(t, "x")
	t.Cleanup(func() { _ = adm.ch.ExchangeDelete(exchange, false, false) })

	s, rec := start(t, conn.Options{URLs: []string{url}})
	q := &conn.Queue{Exclusive: true, AutoDelete: true}
	if _, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), conn.Topology{
		Exchanges: []conn.Exchange{{Name: exchange, Kind: amqp.ExchangeDirect, AutoDelete: true}},
		Queues:    []*conn.Queue{q},
		Bindings:  []conn.Binding{{Queue: q, Exchange: exchange, Key: "k"}},
	}); err != nil {
		t.Fatalf("DeclareTopology: %v", err)
	}
	got := make(chan amqp.Delivery, 16)
	consume(t, s, q, func(_ context.Context, d amqp.Delivery) error {
		got <- d
		return nil
	}, conn.ConsumerOptions{Name: "follower"})
	waitReady(t, s)

	seen := map[string]bool{}
	from := 0
	for i := 0; i <= reconnects; i++ {
		name := q.CurrentName()
		if !strings.HasPrefix(name, "amq.gen-") {
			t.Fatalf("connection %d: CurrentName() = %q, want a server-chosen amq.gen-* name", i, name)
		}
		if seen[name] {
			t.Fatalf("connection %d: queue name %q was used on an earlier connection", i, name)
		}
		seen[name] = true

		body := "message-" + name
		adm.publish(exchange, "k", body)
		select {
		case d := <-got:
			if string(d.Body) != body || d.RoutingKey != "k" {
				t.Fatalf("connection %d: got %q (key %q), want %q", i, d.Body, d.RoutingKey, body)
			}
		case <-testCtx(t, defaultTestTimeout).Done():
			t.Fatalf("connection %d: the message routed to %s never arrived", i, name)
		}
		if i == reconnects {
			break
		}
		if err := k.kill(testCtx(t, killRequestTimeout)); err != nil {
			t.Fatalf("kill: %v", err)
		}
		_, from = rec.WaitFor(t, from, defaultTestTimeout, "ConnectionLost", kind(conn.EventConnectionLost))
		// Ready comes after every hook ran: the queue, its binding and the
		// consumer exist on the new connection.
		_, from = rec.WaitFor(t, from, defaultTestTimeout, "Ready", state(conn.Ready))
	}
	if st := s.Stats(); st.Reconnects != reconnects {
		t.Errorf("Reconnects = %d, want %d", st.Reconnects, reconnects)
	}
	t.Logf("queue names over %d connections: %d distinct", reconnects+1, len(seen))
}

// TestRedeclareWithDifferentArgumentsIsPermanent: the broker refuses a queue
// declaration whose arguments differ from the existing queue's (406
// PRECONDITION_FAILED). warren must report that as a permanent error naming
// the queue, never retry it: at DeclareTopology time it is returned, and on
// a later connection it stops the supervisor.
func TestRedeclareWithDifferentArgumentsIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		// provoke makes the topology (declared with x-max-length 10) meet a
		// queue with x-max-length 20 and returns the resulting error.
		provoke func(t *testing.T, b *broker.Broker, adm *admin, queue string) error
	}{
		{"declared on a ready supervisor", func(t *testing.T, b *broker.Broker, adm *admin, queue string) error {
			adm.queue(queue, amqp.Table{"x-max-length": int32(20)})
			s, _ := start(t, conn.Options{URLs: []string{b.URL}})
			waitReady(t, s)
			_, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), topologyWithMaxLength(queue, 10))
			if err == nil {
				t.Fatal("DeclareTopology succeeded against a queue with other arguments")
			}
			if st := s.State(); st != conn.Ready {
				t.Errorf("state after the refused DeclareTopology = %v, want Ready (the caller got the error)", st)
			}
			return err
		}},
		{"re-declared after a reconnect", func(t *testing.T, b *broker.Broker, adm *admin, queue string) error {
			user, pass := testUser(t, b)
			k, url := newKiller(t, b, user, pass)
			s, rec := start(t, conn.Options{URLs: []string{url}})
			if _, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), topologyWithMaxLength(queue, 10)); err != nil {
				t.Fatalf("DeclareTopology: %v", err)
			}
			waitReady(t, s)
			// Someone else replaces the queue with other arguments.
			adm.deleteQueue(queue)
			adm.queue(queue, amqp.Table{"x-max-length": int32(20)})
			dialsBefore := s.Stats().Dials
			if err := k.kill(testCtx(t, killRequestTimeout)); err != nil {
				t.Fatalf("kill: %v", err)
			}
			rec.WaitFor(t, 0, defaultTestTimeout, "Closed", state(conn.Closed))
			if d := s.Stats().Dials - dialsBefore; d != 1 {
				t.Errorf("%d dials after the refusal, want exactly 1 (no retry loop)", d)
			}
			ctx := testCtx(t, defaultTestTimeout)
			if err := s.WaitReady(ctx); !errors.Is(err, conn.ErrClosed) {
				t.Errorf("WaitReady = %v, want ErrClosed", err)
			}
			return s.Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := broker.Shared(t)
			adm := newAdmin(t, b)
			queue := uniqueName(t, "q")
			err := tt.provoke(t, b, adm, queue)
			t.Logf("error: %v", err)
			if !reconnect.IsPermanent(err) {
				t.Errorf("error %v is not permanent", err)
			}
			if !strings.Contains(err.Error(), `declare queue "`+queue+`"`) {
				t.Errorf("error %q does not name the queue %q", err, queue)
			}
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
				t.Errorf("error %v does not wrap the broker's 406 *amqp.Error", err)
			}
		})
	}
}

func topologyWithMaxLength(queue string, n int32) conn.Topology {
	return conn.Topology{Queues: []*conn.Queue{{Name: queue, Args: amqp.Table{"x-max-length": n}}}}
}
