package rabbitmq4_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
	"github.com/warrenmq/warren/reconnect"
)

// TestRawTransientNonExclusiveRefused shows what the broker does, without
// warren, when a deprecated feature it denies is used: the declaration of a
// queue that is neither durable nor exclusive (auto-delete or not, named or
// server-named) is answered by closing the whole connection with 541
// INTERNAL_ERROR naming the feature, not the channel with a 4xx.
func TestRawTransientNonExclusiveRefused(t *testing.T) {
	for _, tt := range []struct {
		name       string
		queue      string
		autoDelete bool
	}{
		{"named", uniqueName("transient"), false},
		{"auto-delete", uniqueName("transient-ad"), true},
		{"server-named", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := broker.Shared(t)
			c := dial(t, b.URL)
			closed := c.NotifyClose(make(chan *amqp.Error, 1))
			_, err := channel(t, c).QueueDeclare(tt.queue, false, tt.autoDelete, false, false, nil)
			requireCode(t, "declaring a transient non-exclusive queue", err, amqp.InternalError)
			select {
			case e := <-closed:
				t.Logf("connection closed: %v", e)
			case <-time.After(defaultTestTimeout):
				t.Fatalf("connection not closed within %v", defaultTestTimeout)
			}
		})
	}
}

// TestDeclareDeprecatedQueueIsPermanent is the issue-22 scenario: warren's
// default Queue (neither Durable nor Exclusive) on a 4.0.5 broker that
// denies transient non-exclusive queues must end in a permanent error,
// never a redial loop. Declared while Ready, DeclareTopology returns it (the
// broker closed the connection, so warren dials once more, without the
// refused topology); declared before the first connection, it stops the
// supervisor.
func TestDeclareDeprecatedQueueIsPermanent(t *testing.T) {
	for _, tt := range []struct {
		name      string
		whenReady bool
	}{
		{"while Ready", true},
		{"before the first connection", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := broker.Shared(t)
			rec := testkit.NewRecorder()
			s, err := conn.New(conn.Options{
				URLs:      []string{b.URL},
				Reconnect: testkit.FastPolicy(),
				Logger:    testkit.QuietLogger(t),
				OnEvent:   rec.Handle,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
				defer cancel()
				_ = s.Close(ctx)
			})
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			if tt.whenReady {
				if err := s.WaitReady(ctx); err != nil {
					t.Fatal(err)
				}
			}
			q := &conn.Queue{Name: uniqueName("default-queue")}
			start := time.Now()
			_, declErr := s.DeclareTopology(ctx, conn.Topology{Queues: []*conn.Queue{q}})
			t.Logf("DeclareTopology after %v: %v", time.Since(start), declErr)

			// Give a redial loop time to show itself.
			select {
			case <-s.Done():
			case <-time.After(3 * time.Second):
			}
			st := s.Stats()
			t.Logf("state %v, dials %d, failed dials %d, err %v", s.State(), st.Dials, st.FailedDials, s.Err())
			returned := declErr != nil && reconnect.IsPermanent(declErr)
			stopped := s.State() == conn.Closed && reconnect.IsPermanent(s.Err())
			if !returned && !stopped {
				t.Errorf("DeclareTopology returned %v and the supervisor is %v (err %v): want a permanent error, returned or stopping the supervisor; events:\n%s",
					declErr, s.State(), s.Err(), testkit.Describe(rec.Snapshot()))
			}
			if st.Dials > 2 {
				t.Errorf("%d dials after the refusal: a redial loop", st.Dials)
			}
		})
	}
}
