package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// pubFakeMissingExchange closes the channel on a publish to "missing", as
// RabbitMQ does for an exchange that does not exist, and acks the others.
func pubFakeMissingExchange(m pubFakeMsg) pubFakeAction {
	if m.Exchange == "missing" {
		return pubFakeCloseChannel
	}
	return pubFakeAck
}

func TestPublisherReopensChannelClosedByBroker(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubFakeMissingExchange)
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

// TestPublisherMatchesReturnsBySequence: callers reuse MessageIds (a business
// key) or leave them empty; a return must still settle its own message, and
// only it, whatever the ids.
func TestPublisherMatchesReturnsBySequence(t *testing.T) {
	const n = 200
	b := startPubFakeBroker(t)
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		if strings.HasPrefix(m.Body, "unroutable") {
			return pubFakeReturn
		}
		return pubFakeAck
	})
	_, p := startPubTest(t, b, PublisherOptions{Mandatory: true, MaxInFlight: 32})
	ctx := pubTestCtx(t)
	ids := []string{"", "order-1", "order-1", "order-2"}
	var cs []*Confirmation
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("routed-%d", i)
		if i%3 != 0 {
			body = fmt.Sprintf("unroutable-%d", i)
		}
		c, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{MessageId: ids[i%len(ids)], Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for i, c := range cs {
		err := c.Wait(ctx)
		var re *ReturnedError
		if i%3 != 0 {
			if !errors.As(err, &re) {
				t.Errorf("unroutable message %d (id %q) = %v, want a *ReturnedError", i, c.MessageID(), err)
			} else if _, ok := re.Return.Headers[pubSeqHeader]; ok {
				t.Errorf("message %d: the return shows the publisher's own header", i)
			}
		} else if err != nil {
			t.Errorf("routed message %d (id %q) = %v, want nil", i, c.MessageID(), err)
		}
	}
}

// TestPublisherIsolatesTheMessageThatClosesTheChannel: one message among
// many makes the broker close the channel (406, as a forged user_id does on
// RabbitMQ) while others are in flight unconfirmed. It must fail alone, with
// the broker's error; every other message is confirmed, the connection
// lives, and no more than a window of messages reaches the broker twice.
func TestPublisherIsolatesTheMessageThatClosesTheChannel(t *testing.T) {
	const n, window = 300, 16
	for _, at := range []int{0, 5, 150} {
		t.Run(fmt.Sprint("bad message ", at), func(t *testing.T) {
			b := startPubFakeBroker(t)
			bad := fmt.Sprintf("m-%d", at)
			b.setDecide(func(m pubFakeMsg) pubFakeAction {
				if m.Body == bad {
					return pubFakeReject
				}
				return pubFakeHold // acked by the ticker below, a window at a time
			})
			s, p := startPubTest(t, b, PublisherOptions{MaxInFlight: window})
			ctx := pubTestCtx(t)
			stop := make(chan struct{})
			released := make(chan struct{})
			go func() {
				defer close(released)
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						b.live().release()
					}
				}
			}()
			defer func() { close(stop); <-released }()
			var cs []*Confirmation
			for i := 0; i < n; i++ {
				c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprintf("m-%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			for i, c := range cs {
				err := c.Wait(ctx)
				var ae *amqp.Error
				switch {
				case i == at:
					if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || errors.Is(err, ErrConfirmLost) {
						t.Errorf("the bad message = %v, want the broker's 406", err)
					}
				case err != nil:
					t.Errorf("innocent message %d = %v, want nil", i, err)
				}
			}
			seen := map[string]int{}
			dups := 0
			for _, m := range b.messages() {
				if seen[m.Body]++; seen[m.Body] > 1 && m.Body != bad {
					dups++
				}
			}
			t.Logf("duplicates %d, bad message written %d times", dups, seen[bad])
			if dups > window {
				t.Errorf("%d duplicates, want at most the window, %d", dups, window)
			}
			if st := s.Stats(); st.ConnectionsLost != 0 {
				t.Errorf("%d connections lost, want 0", st.ConnectionsLost)
			}
		})
	}
}

// TestPublisherReopenNeverGivesUpOnALiveConnection: the dial policy's
// MaxAttempts must not stop the reopening of a channel the broker closed
// while the connection lives, or the supervisor stays Ready with no channel.
func TestPublisherReopenNeverGivesUpOnALiveConnection(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubFakeMissingExchange)
	policy := fastPolicy()
	policy.MaxAttempts = 2
	s, p := startPubTestWith(t, b, Options{Reconnect: policy}, PublisherOptions{})
	ctx := pubTestCtx(t)
	b.refuseChannels(5)
	if err := p.Publish(ctx, "missing", "k", pubBody("bad")); err == nil {
		t.Fatal("Publish to a missing exchange succeeded")
	}
	if err := p.Publish(ctx, "", "q", pubBody("good")); err != nil {
		t.Fatalf("Publish after 5 refused reopens with MaxAttempts 2: %v (state %v)", err, s.State())
	}
}

// TestPublisherExpiresUnwrittenMessageWhenContextEnds: a message waiting
// behind a write the broker does not read settles when its context ends, not
// when the writer reaches it.
func TestPublisherExpiresUnwrittenMessageWhenContextEnds(t *testing.T) {
	b := startPubFakeBroker(t)
	_, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	fc := b.live()
	stalled := fc.stallMidBody()
	// Larger than the socket buffers: the writer blocks in it.
	bigCtx, bigCancel := context.WithCancel(ctx)
	defer bigCancel()
	if _, err := p.PublishAsync(bigCtx, "", "q", amqp.Publishing{Body: make([]byte, 64<<20)}); err != nil {
		fc.cancelStallMidBody(stalled)
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(defaultTestTimeout):
		fc.cancelStallMidBody(stalled)
		t.Fatal("the broker never got the large message's first body frame")
	}
	// The broker stopped reading inside the large message: the writer is
	// stuck in it. At the end, in this order: the large message's context
	// ends, so that the kill fails it instead of leaving it to be written
	// again, all 64 MiB, on the next connection; the kill ends the stuck
	// write; the broker, resumed last, finds its socket closed and reads no
	// more of it.
	defer fc.resume()
	defer fc.kill()
	defer bigCancel()
	msgCtx, cancel := context.WithCancel(ctx)
	c, err := p.PublishAsync(msgCtx, "", "q", pubBody("behind"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-c.Done():
		if err := c.Wait(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, ErrConfirmLost) {
			t.Errorf("Wait = %v, want context.Canceled (it was never written)", err)
		}
	case <-time.After(defaultTestTimeout):
		// The writer cannot reach it: only its context's end settles it.
		t.Fatal("a message not yet written did not settle when its context ended")
	}
	if msgs := b.messages(); len(msgs) != 0 {
		t.Errorf("broker got %d messages, want none: the large one is cut short and the other never written", len(msgs))
	}
}
