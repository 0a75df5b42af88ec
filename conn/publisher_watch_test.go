package conn

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPublisherReopensChannelClosedByBroker(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		if m.Exchange == "missing" {
			return pubFakeCloseChannel
		}
		return pubFakeAck
	})
	s, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	err := p.Publish(ctx, "missing", "k", pubBody("bad"))
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("Publish to a missing exchange = %v, want the broker's 404", err)
	}
	for i := 0; i < 3; i++ {
		if err := p.Publish(ctx, "", "q", pubBody("good")); err != nil {
			t.Fatalf("Publish after the channel was closed: %v", err)
		}
	}
	if st := s.Stats(); st.Connections != 1 {
		t.Errorf("Stats.Connections = %d, want 1: only the channel should be reopened", st.Connections)
	}
}

func TestPublisherFailsRetryWhenContextEnds(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	s, p := startPubTest(t, b, PublisherOptions{})
	msgCtx, cancel := context.WithCancel(pubTestCtx(t))
	defer cancel()
	c, err := p.PublishAsync(msgCtx, "", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	b.refuse()
	b.conn(0).kill()
	ctx := pubTestCtx(t)
	for s.State() == Ready {
		s.WaitForStateChange(ctx, Ready)
	}
	select {
	case <-c.Done():
		t.Fatalf("settled with %v while its context lives; want it kept for republication", c.Wait(ctx))
	case <-time.After(shortTestTimeout):
	}
	cancel()
	err = c.Wait(ctx)
	if !errors.Is(err, ErrConfirmLost) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want ErrConfirmLost and context.Canceled", err)
	}
}
