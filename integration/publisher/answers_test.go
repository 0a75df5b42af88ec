package publisher_test

import (
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestBrokerAnswers covers every way the broker settles a message other than
// a plain ack: a nack (a full queue that rejects publishes), a return (an
// unroutable mandatory message), and a channel error (a missing exchange),
// after which the publisher reopens its channel on the same connection.
func TestBrokerAnswers(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	raw := rawConn(t, b)
	full := declareQueue(t, raw, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	open := declareQueue(t, raw, nil)
	s := start(t, conn.Options{URLs: []string{b.URLWith(user, pass, "/")}, ConnectionName: t.Name()})
	plain := newPublisher(t, s, conn.PublisherOptions{Name: "plain"})
	mandatory := newPublisher(t, s, conn.PublisherOptions{Name: "mandatory", Mandatory: true})
	ctx := testCtx(t, defaultTestTimeout)
	msg := persistent("", []byte("m"))

	t.Run("nack", func(t *testing.T) {
		if err := plain.Publish(ctx, "", full, msg); err != nil {
			t.Fatalf("first publish into a queue of one: %v", err)
		}
		begin := time.Now()
		err := plain.Publish(ctx, "", full, msg)
		if !errors.Is(err, conn.ErrNacked) {
			t.Fatalf("publish into a full reject-publish queue = %v, want ErrNacked", err)
		}
		// The whole schedule of waits first, however many early releases
		// (uncounted) it got.
		if took, schedule := time.Since(begin), 7750*time.Millisecond; took < schedule {
			t.Errorf("ErrNacked after %v, before the %v schedule of waits", took, schedule)
		}
	})
	t.Run("mandatory unroutable", func(t *testing.T) {
		err := mandatory.Publish(ctx, "amq.direct", "no-such-binding", msg)
		var re *conn.ReturnedError
		if !errors.Is(err, conn.ErrReturned) || !errors.As(err, &re) {
			t.Fatalf("mandatory publish with no route = %v, want a *ReturnedError", err)
		}
		if re.Return.ReplyCode != amqp.NoRoute || re.Return.RoutingKey != "no-such-binding" {
			t.Errorf("return: %d %s key %q, want 312 NO_ROUTE for no-such-binding",
				re.Return.ReplyCode, re.Return.ReplyText, re.Return.RoutingKey)
		}
		if err := mandatory.Publish(ctx, "", open, msg); err != nil {
			t.Errorf("mandatory publish with a route: %v", err)
		}
	})
	t.Run("not mandatory unroutable", func(t *testing.T) {
		if err := plain.Publish(ctx, "amq.direct", "no-such-binding", msg); err != nil {
			t.Fatalf("unroutable publish without mandatory = %v, want nil (the broker acks and drops it)", err)
		}
	})
	t.Run("missing exchange", func(t *testing.T) {
		err := plain.Publish(ctx, "no-such-exchange", "k", msg)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			t.Fatalf("publish to a missing exchange = %v, want the broker's 404", err)
		}
		for i := 0; i < 3; i++ {
			if err := plain.Publish(ctx, "", open, msg); err != nil {
				t.Fatalf("publish after the channel error: %v", err)
			}
		}
		if got := s.Stats().Connections; got != 1 {
			t.Errorf("Stats.Connections = %d, want 1: only the channel should be reopened", got)
		}
	})
	st := s.Stats()
	t.Logf("stats: published %d confirmed %d nacked %d returned %d", st.Published, st.Confirmed, st.Nacked, st.Returned)
	// The nacked message was republished DefaultNackRepublishes times (a
	// full reject-publish queue nacks each copy) before it failed, plus up
	// to two uncounted early releases (its channel replaced for nacking
	// everything; an ack of a later message), each once.
	if lo, hi := uint64(1+conn.DefaultNackRepublishes), uint64(3+conn.DefaultNackRepublishes); st.Nacked < lo || st.Nacked > hi || st.Returned != 1 {
		t.Errorf("Stats: nacked %d returned %d, want %d to %d and 1", st.Nacked, st.Returned, lo, hi)
	}
}
