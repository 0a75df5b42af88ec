package conn

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type mwKey struct{}

// recordingMiddleware passes a context value to the handler and sends the
// result next returned on results.
func recordingMiddleware(results chan<- HandleResult) HandlerMiddleware {
	return func(next HandleFunc) HandleFunc {
		return func(ctx context.Context, info DeliveryInfo, d amqp.Delivery) HandleResult {
			if info.Consumer != "worker" || info.Queue != "q" {
				panic("middleware got the wrong DeliveryInfo")
			}
			r := next(context.WithValue(ctx, mwKey{}, "from middleware"), info, d)
			results <- r
			return r
		}
	}
}

func TestMiddlewareSeesOutcomeAndSettlement(t *testing.T) {
	errFailed := errors.New("failed")
	fail := func(context.Context, amqp.Delivery) error { return errFailed }
	tests := []struct {
		name    string
		opts    ConsumerOptions
		handler Handler
		want    HandleResult // Err compared with errors.Is
		sent    *settlement
	}{
		{"ack", ConsumerOptions{}, okHandler, HandleResult{Outcome: OutcomeAck, Settlement: SettledAck}, &settlement{ack: true}},
		{"reject", ConsumerOptions{}, func(context.Context, amqp.Delivery) error { return Reject(errFailed) },
			HandleResult{Err: errFailed, Outcome: OutcomeReject, Settlement: SettledReject}, &settlement{}},
		{"policy requeue", ConsumerOptions{OnError: RequeueAlways}, fail,
			HandleResult{Err: errFailed, Outcome: OutcomeRequeue, Settlement: SettledRequeue}, &settlement{requeue: true}},
		{"policy retry without retry queues", ConsumerOptions{}, fail,
			HandleResult{Err: errFailed, Outcome: OutcomeRetry, Settlement: SettledRequeue}, &settlement{requeue: true}},
		{"self settled", ConsumerOptions{OnError: RequeueAlways}, func(_ context.Context, d amqp.Delivery) error {
			_ = d.Reject(false)
			return errFailed
		}, HandleResult{Err: errFailed, Outcome: OutcomeReject, Settlement: SettledReject, ByHandler: true}, &settlement{}},
		{"panic", ConsumerOptions{OnError: RequeueNever}, func(context.Context, amqp.Delivery) error { panic("boom") },
			HandleResult{Err: ErrHookPanicked, Panicked: true, Outcome: OutcomeReject, Settlement: SettledReject}, &settlement{}},
		{"autoack", ConsumerOptions{AutoAck: true}, okHandler,
			HandleResult{Outcome: OutcomeAck, Settlement: SettledAutoAck}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newUnreadySupervisor(t, nil)
			results := make(chan HandleResult, 1)
			var sawValue atomic.Bool
			h := func(ctx context.Context, d amqp.Delivery) error {
				sawValue.Store(ctx.Value(mwKey{}) == "from middleware")
				return tt.handler(ctx, d)
			}
			tt.opts.Name = "worker"
			tt.opts.Middleware = []HandlerMiddleware{recordingMiddleware(results)}
			c, err := s.Consume(context.Background(), NamedQueue("q"), h, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			acker := newFakeAcker()
			startFakeSubscription(c, "q") <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 7}
			var got HandleResult
			select {
			case got = <-results:
			case <-time.After(defaultTestTimeout):
				t.Fatal("the middleware saw no result")
			}
			if !errors.Is(got.Err, tt.want.Err) || got.Panicked != tt.want.Panicked || got.Outcome != tt.want.Outcome ||
				got.Settlement != tt.want.Settlement || got.ByHandler != tt.want.ByHandler {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
			if !sawValue.Load() {
				t.Error("the handler did not get the middleware's context")
			}
			if tt.sent != nil {
				sent, ok := acker.next(defaultTestTimeout)
				want := *tt.sent
				want.tag = 7
				if !ok || sent != want {
					t.Errorf("sent %+v (%v), want %+v", sent, ok, want)
				}
			}
			if sent, ok := acker.next(shortTestTimeout); ok {
				t.Errorf("settled again: %+v", sent)
			}
			if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMiddlewareThatSkipsNextDecidesTheOutcome: a middleware that never
// calls next settles the delivery by the error it returns; the handler
// never runs.
func TestMiddlewareThatSkipsNextDecidesTheOutcome(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want settlement
	}{
		{"nil acks", nil, settlement{ack: true}},
		{"Reject rejects", Reject(nil), settlement{}},
		{"Requeue requeues", Requeue(nil), settlement{requeue: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newUnreadySupervisor(t, nil)
			var ran atomic.Bool
			skip := func(HandleFunc) HandleFunc {
				return func(context.Context, DeliveryInfo, amqp.Delivery) HandleResult { return HandleResult{Err: tt.err} }
			}
			c, err := s.Consume(context.Background(), NamedQueue("q"),
				func(context.Context, amqp.Delivery) error { ran.Store(true); return nil },
				ConsumerOptions{Middleware: []HandlerMiddleware{skip}})
			if err != nil {
				t.Fatal(err)
			}
			acker := newFakeAcker()
			startFakeSubscription(c, "q") <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 3}
			got, ok := acker.next(defaultTestTimeout)
			tt.want.tag = 3
			if !ok || got != tt.want {
				t.Errorf("sent %+v (%v), want %+v", got, ok, tt.want)
			}
			if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
				t.Fatal(err)
			}
			if ran.Load() {
				t.Error("the handler ran although the middleware did not call next")
			}
		})
	}
}

// TestMiddlewarePanicAndDoubleNext: a panicking middleware is a handler
// panic (counted, settled by OnError); calling next twice runs the handler
// once.
func TestMiddlewarePanicAndDoubleNext(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	var calls atomic.Int32
	second := make(chan error, 1)
	mw := func(next HandleFunc) HandleFunc {
		return func(ctx context.Context, info DeliveryInfo, d amqp.Delivery) HandleResult {
			if d.DeliveryTag == 1 {
				panic("middleware boom")
			}
			r := next(ctx, info, d)
			second <- next(ctx, info, d).Err
			return r
		}
	}
	c, err := s.Consume(context.Background(), NamedQueue("q"),
		func(context.Context, amqp.Delivery) error { calls.Add(1); return nil },
		ConsumerOptions{OnError: RequeueNever, Middleware: []HandlerMiddleware{mw}})
	if err != nil {
		t.Fatal(err)
	}
	acker := newFakeAcker()
	deliveries := startFakeSubscription(c, "q")
	deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 1}
	if got, ok := acker.next(defaultTestTimeout); !ok || got != (settlement{tag: 1}) {
		t.Fatalf("after a middleware panic sent %+v (%v), want a reject", got, ok)
	}
	deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 2}
	if got, ok := acker.next(defaultTestTimeout); !ok || got != (settlement{tag: 2, ack: true}) {
		t.Fatalf("sent %+v (%v), want an ack", got, ok)
	}
	if err := <-second; err == nil {
		t.Error("a second call of next succeeded")
	}
	if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", calls.Load())
	}
	if st := s.Stats(); st.HandlerPanics != 1 || st.Delivered != 2 {
		t.Errorf("stats: panics %d delivered %d, want 1 and 2", st.HandlerPanics, st.Delivered)
	}
}

func TestNilMiddlewareIsInvalid(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	nilHandle := func(HandleFunc) HandleFunc { return nil }
	for _, mws := range [][]HandlerMiddleware{{nil}, {nilHandle}} {
		_, err := s.Consume(context.Background(), NamedQueue("q"), okHandler, ConsumerOptions{Middleware: mws})
		if !errors.Is(err, ErrInvalidConsumerOptions) {
			t.Errorf("Consume with middleware %v = %v, want ErrInvalidConsumerOptions", mws, err)
		}
	}
}

// TestMiddlewareCallingNextLateDoesNotRunTheHandler: next called on another
// goroutine after the middleware returned is refused; the delivery was
// settled by the middleware's result and the handler never runs outside its
// slot.
func TestMiddlewareCallingNextLateDoesNotRunTheHandler(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	late := make(chan error, 1)
	proceed := make(chan struct{}) // closed once the delivery was settled
	mw := func(next HandleFunc) HandleFunc {
		return func(ctx context.Context, info DeliveryInfo, d amqp.Delivery) HandleResult {
			go func() {
				<-proceed // after the middleware returned
				late <- next(ctx, info, d).Err
			}()
			return HandleResult{}
		}
	}
	var ran atomic.Bool
	c, err := s.Consume(context.Background(), NamedQueue("q"),
		func(context.Context, amqp.Delivery) error { ran.Store(true); return nil },
		ConsumerOptions{Middleware: []HandlerMiddleware{mw}})
	if err != nil {
		t.Fatal(err)
	}
	acker := newFakeAcker()
	startFakeSubscription(c, "q") <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 5}
	if got, ok := acker.next(defaultTestTimeout); !ok || got != (settlement{tag: 5, ack: true}) {
		t.Fatalf("sent %+v (%v), want the middleware's ack", got, ok)
	}
	close(proceed)
	if err := <-late; !errors.Is(err, ErrDeliverySettled) {
		t.Errorf("late next = %v, want ErrDeliverySettled", err)
	}
	if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("the handler ran after its middleware returned")
	}
}
