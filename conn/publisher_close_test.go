package conn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPublisherCloseReportsUnconfirmed(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	_, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	var ids []string
	var cs []*Confirmation
	for i := 0; i < 3; i++ {
		c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		ids = append(ids, c.MessageID())
	}
	b.waitMessages(3)
	closeCtx, cancel := context.WithTimeout(ctx, shortTestTimeout)
	defer cancel()
	start := time.Now()
	err := p.Close(closeCtx)
	took := time.Since(start)
	var ue *UnconfirmedError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("Close = %v, want an *UnconfirmedError", err)
	}
	if fmt.Sprint(ue.MessageIDs) != fmt.Sprint(ids) {
		t.Errorf("unconfirmed ids %v, want %v", ue.MessageIDs, ids)
	}
	if took > shortTestTimeout+defaultTestTimeout/5 {
		t.Errorf("Close took %v with a %v context", took, shortTestTimeout)
	}
	for i, c := range cs {
		if err := c.Wait(ctx); !errors.Is(err, ErrUnconfirmed) {
			t.Errorf("message %d: %v, want ErrUnconfirmed", i, err)
		}
	}
	if err := p.Publish(ctx, "", "q", pubBody("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if err2 := p.Close(ctx); err2 != err {
		t.Errorf("second Close = %v, want the first result %v", err2, err)
	}
}

func TestPublisherCloseWaitsForConfirms(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	_, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	var cs []*Confirmation
	for i := 0; i < 2; i++ {
		c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	b.waitMessages(2)
	time.AfterFunc(shortTestTimeout, b.conn(0).release)
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close = %v, want nil once the broker confirmed", err)
	}
	for i, c := range cs {
		if err := c.Wait(ctx); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
}

func TestSupervisorCloseReportsUnconfirmed(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	s, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	c, err := p.PublishAsync(ctx, "", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	// Supervisor.Close gives its publishers all of ctx but min(ctx/4,
	// pubCloseMargin); the supervisor goroutine must make their report
	// within that margin, and a loaded host can be that late (25ms, the
	// margin of a 100ms ctx, was not enough). 4*pubCloseMargin gives the
	// whole margin.
	closeCtx, cancel := context.WithTimeout(ctx, 4*pubCloseMargin)
	defer cancel()
	err = s.Close(closeCtx)
	var ue *UnconfirmedError
	if !errors.As(err, &ue) || len(ue.MessageIDs) != 1 || ue.MessageIDs[0] != c.MessageID() {
		t.Fatalf("Supervisor.Close = %v, want an *UnconfirmedError naming %s", err, c.MessageID())
	}
	if err := c.Wait(ctx); !errors.Is(err, ErrUnconfirmed) {
		t.Errorf("message = %v, want ErrUnconfirmed", err)
	}
	if err := p.Publish(ctx, "", "q", pubBody("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Supervisor.Close = %v, want ErrClosed", err)
	}
}

// TestSupervisorCloseKeepsTheReportWhenItsCtxEndsLater: the publishers report
// before the steps after them (other hooks, the close handshake, the
// goroutines' exit); a Close whose ctx ends during those steps still returns
// the report, joined with ctx's error, rather than ctx's error alone.
func TestSupervisorCloseKeepsTheReportWhenItsCtxEndsLater(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s := startPubSupervisor(t, b, Options{})
	ctx := pubTestCtx(t)
	// Registered before the publisher, so closed after it: a step after the
	// publishers that outlasts Close's ctx.
	if _, err := s.AddHook(ctx, Hook{
		Name: "slow",
		Up:   func(context.Context, *amqp.Connection) error { return nil },
		Close: func(context.Context) error {
			close(started)
			select {
			case <-release:
			case <-time.After(defaultTestTimeout):
			}
			return nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	p, err := s.NewPublisher(ctx, PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.PublishAsync(ctx, "", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	closeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- s.Close(closeCtx) }()
	// The connection dies for good: the publisher stops waiting and reports
	// its message, without waiting out any deadline.
	b.refuse()
	b.conn(0).kill()
	select {
	case <-started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the hook registered before the publisher was never closed")
	}
	cancel()
	select {
	case err = <-closed:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Supervisor.Close still waiting after its ctx ended")
	}
	var ue *UnconfirmedError
	if !errors.As(err, &ue) || len(ue.MessageIDs) != 1 || ue.MessageIDs[0] != c.MessageID() || !errors.Is(err, context.Canceled) {
		t.Fatalf("Supervisor.Close = %v, want an *UnconfirmedError naming %s joined with context.Canceled", err, c.MessageID())
	}
}

// TestPublisherCloseWaitsAcrossReconnect: Close waits for messages whose
// connection died to be republished and confirmed on the next one.
func TestPublisherCloseWaitsAcrossReconnect(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		if m.Conn == 0 {
			return pubFakeHold
		}
		return pubFakeAck
	})
	_, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	c, err := p.PublishAsync(ctx, "", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	b.conn(0).kill()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close = %v, want nil once the message is republished and confirmed", err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("message: %v", err)
	}
	if msgs := b.messages(); len(msgs) != 2 || msgs[1].Conn != 1 {
		t.Fatalf("broker got %+v, want the message again on connection 1", msgs)
	}
}

// TestPublisherCloseStopsWaitingWhenSupervisorStops: a Close waiting for a
// connection that will never come back, because the supervisor is closing,
// returns with the report at once instead of waiting out its context.
func TestPublisherCloseStopsWaitingWhenSupervisorStops(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	s, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	c, err := p.PublishAsync(ctx, "", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	b.refuse()
	b.conn(0).kill()
	for s.State() == Ready {
		s.WaitForStateChange(ctx, Ready)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while the message could still be republished", err)
	case <-time.After(shortTestTimeout):
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Supervisor.Close = %v, want nil: the user's Close reports the message", err)
	}
	select {
	case err := <-closed:
		var ue *UnconfirmedError
		if !errors.As(err, &ue) || len(ue.MessageIDs) != 1 || ue.MessageIDs[0] != c.MessageID() {
			t.Fatalf("Close = %v, want an *UnconfirmedError naming %s", err, c.MessageID())
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Close still waiting after the supervisor stopped")
	}
}

// TestPublisherCloseWithoutDeadlineUsesCloseTimeout: Close with a context
// that never ends must still return, after Options.CloseTimeout, with the
// unconfirmed messages failed and reported.
func TestPublisherCloseWithoutDeadlineUsesCloseTimeout(t *testing.T) {
	// Supervisor.Close leaves its publishers CloseTimeout less
	// min(CloseTimeout/4, pubCloseMargin) and waits CloseTimeout*1.1: the
	// report must be made within the difference. 200ms left a loaded host
	// 70ms; this leaves it 140ms.
	const closeTimeout = 4 * pubCloseMargin
	for _, sup := range []bool{false, true} {
		t.Run(fmt.Sprint("supervisor ", sup), func(t *testing.T) {
			b := startPubFakeBroker(t)
			b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
			s, p := startPubTestWith(t, b, Options{CloseTimeout: closeTimeout}, PublisherOptions{})
			c, err := p.PublishAsync(pubTestCtx(t), "", "q", pubBody("m"))
			if err != nil {
				t.Fatal(err)
			}
			b.waitMessages(1)
			closed := make(chan error, 1)
			start := time.Now()
			go func() {
				if sup {
					closed <- s.Close(context.Background())
				} else {
					closed <- p.Close(context.Background())
				}
			}()
			select {
			case err := <-closed:
				var ue *UnconfirmedError
				if !errors.As(err, &ue) || len(ue.MessageIDs) != 1 {
					t.Errorf("Close = %v, want an *UnconfirmedError naming the message", err)
				}
				t.Logf("Close returned after %v", time.Since(start))
			case <-time.After(closeTimeout + defaultTestTimeout/2):
				t.Fatalf("Close(context.Background()) still waiting %v after CloseTimeout", defaultTestTimeout/2)
			}
			if err := c.Wait(pubTestCtx(t)); !errors.Is(err, ErrUnconfirmed) {
				t.Errorf("message = %v, want ErrUnconfirmed", err)
			}
		})
	}
}
