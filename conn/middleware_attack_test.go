package conn

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAttackInterceptorBreaksTheMessage: headers an interceptor adds are
// validated like the caller's, and a context it cancels fails the publish;
// either way its settle function hears of it and nothing reaches the broker.
func TestAttackInterceptorBreaksTheMessage(t *testing.T) {
	b := startPubFakeBroker(t)
	results := make(chan PublishResult, 2)
	breaker := func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
		settle := func(r PublishResult) { results <- r }
		if pub.Msg.MessageId == "bad-header" {
			pub.Msg.Headers = setHeader(pub.Msg.Headers, "chan", make(chan int))
			return ctx, settle
		}
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		return ctx, settle
	}
	_, p := startPubTest(t, b, PublisherOptions{Interceptors: []PublishInterceptor{breaker}})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "bad-header"}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("Publish with an invalid header from the interceptor = %v, want ErrInvalidMessage", err)
	}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "cancelled"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a context the interceptor cancelled = %v, want context.Canceled", err)
	}
	for i := 0; i < 2; i++ {
		if r := <-results; r.Outcome != PublishFailed || r.Written {
			t.Errorf("settle saw %+v, want an unwritten failure", r)
		}
	}
	if n := len(b.messages()); n != 0 {
		t.Errorf("%d broken messages reached the broker", n)
	}
}

// TestAttackSettleFunctionThatNeverReturns: a PublishSettled stuck in user
// code cannot make Supervisor.Close hang past its context; Close reports the
// stuck goroutine, which ends when the function returns.
func TestAttackSettleFunctionThatNeverReturns(t *testing.T) {
	b := startPubFakeBroker(t)
	stuck := make(chan struct{})
	entered := make(chan struct{}, 1)
	blocker := func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
		return ctx, func(PublishResult) {
			entered <- struct{}{}
			<-stuck
		}
	}
	s, err := New(Options{URLs: []string{b.url()}, Logger: discardLogger(), Reconnect: fastPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.NewPublisher(ctx, PublisherOptions{Interceptors: []PublishInterceptor{blocker}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	<-entered
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	err = s.Close(short)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with a stuck settle function, want about its 200ms context", took)
	}
	if err == nil {
		t.Error("Close returned nil while a settle function was stuck")
	}
	close(stuck)
	if err := s.Close(ctx); err == nil {
		// The first result stands (Close is idempotent); what matters is
		// that the goroutine ends once the function returns, which
		// goleak checks at the end of the package.
		t.Log("second Close returned nil")
	}
}

// TestAttackInterceptorWithoutSettleFunction: interceptors that return no
// settle function hold no room: more messages than MaxInFlight pass.
func TestAttackInterceptorWithoutSettleFunction(t *testing.T) {
	b := startPubFakeBroker(t)
	headersOnly := func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
		pub.Msg.Headers = setHeader(pub.Msg.Headers, "x-tenant", "t1")
		return nil, nil
	}
	_, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 2, Interceptors: []PublishInterceptor{headersOnly}})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	for i := 0; i < 5; i++ {
		if err := p.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}
