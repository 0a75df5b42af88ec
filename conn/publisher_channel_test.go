package conn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPublisherCarriesUnconfirmedToNextConnection(t *testing.T) {
	tests := []struct {
		name   string
		policy ConfirmLostPolicy
	}{
		{"republish", ConfirmLostRepublish},
		{"fail", ConfirmLostFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startPubFakeBroker(t)
			b.setDecide(func(m pubFakeMsg) pubFakeAction {
				if m.Conn == 0 {
					return pubFakeHold
				}
				return pubFakeAck
			})
			s, p := startPubTest(t, b, PublisherOptions{OnConfirmLost: tc.policy})
			ctx := pubTestCtx(t)
			var cs []*Confirmation
			for i := 0; i < 3; i++ {
				c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			b.waitMessages(3)
			b.conn(0).kill()
			for i, c := range cs {
				err := c.Wait(ctx)
				switch {
				case tc.policy == ConfirmLostRepublish && err != nil:
					t.Errorf("message %d: %v, want nil after republication", i, err)
				case tc.policy == ConfirmLostFail && !errors.Is(err, ErrConfirmLost):
					t.Errorf("message %d: %v, want ErrConfirmLost", i, err)
				}
			}
			// Publishing goes on on the new connection, in confirm mode.
			if err := p.Publish(ctx, "", "q", pubBody("after")); err != nil {
				t.Fatalf("publish after reconnect: %v", err)
			}
			var again []pubFakeMsg
			for _, m := range b.messages() {
				if !m.Confirming {
					t.Errorf("publish %q on connection %d arrived outside confirm mode", m.Body, m.Conn)
				}
				if m.Conn == 1 {
					again = append(again, m)
				}
			}
			want := []string{"after"}
			if tc.policy == ConfirmLostRepublish {
				want = []string{"0", "1", "2", "after"}
			}
			if len(again) != len(want) {
				t.Fatalf("connection 1 got %d publishes, want %v", len(again), want)
			}
			for i, m := range again {
				if m.Body != want[i] {
					t.Errorf("publish %d on the new connection: %q, want %q (original order)", i, m.Body, want[i])
				}
				if i < 3 && tc.policy == ConfirmLostRepublish && m.MessageID != cs[i].MessageID() {
					t.Errorf("republished %q with id %q, want the original %q", m.Body, m.MessageID, cs[i].MessageID())
				}
			}
			wantRepublished := uint64(0)
			if tc.policy == ConfirmLostRepublish {
				wantRepublished = 3
			}
			if st := s.Stats(); st.Republished != wantRepublished {
				t.Errorf("Stats.Republished = %d, want %d", st.Republished, wantRepublished)
			}
		})
	}
}

// TestPublisherNeverPublishesOutsideConfirmMode publishes without pause while
// the connection is killed repeatedly: every publish the broker sees must be
// on a channel in confirm mode, and every message must be confirmed.
func TestPublisherNeverPublishesOutsideConfirmMode(t *testing.T) {
	const kills = 5
	b := startPubFakeBroker(t)
	_, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 8})
	ctx := pubTestCtx(t)
	errc := make(chan error, 1)
	stop := make(chan struct{})
	var cs []*Confirmation
	go func() {
		defer close(errc)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprint(i)))
			if err != nil {
				errc <- err
				return
			}
			cs = append(cs, c)
		}
	}()
	for k := 0; k < kills; k++ {
		b.waitMessages(len(b.messages()) + 20)
		b.conn(k).kill()
	}
	b.waitMessages(len(b.messages()) + 20)
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("PublishAsync: %v", err)
	}
	for i, c := range cs {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for _, m := range b.messages() {
		if !m.Confirming {
			t.Fatalf("publish %q on connection %d arrived outside confirm mode", m.Body, m.Conn)
		}
	}
}
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
