package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// settlement is what a handler goroutine did with one delivery.
type settlement struct {
	tag     uint64
	ack     bool
	requeue bool
}

// fakeAcker records acks and nacks in place of an amqp.Channel.
type fakeAcker struct {
	settled chan settlement
}

func newFakeAcker() *fakeAcker { return &fakeAcker{settled: make(chan settlement, 16)} }

func (a *fakeAcker) Ack(tag uint64, _ bool) error {
	a.settled <- settlement{tag: tag, ack: true}
	return nil
}

func (a *fakeAcker) Nack(tag uint64, _, requeue bool) error {
	a.settled <- settlement{tag: tag, requeue: requeue}
	return nil
}

func (a *fakeAcker) Reject(tag uint64, requeue bool) error { return a.Nack(tag, false, requeue) }

// next returns the next settlement, or ok false if none comes within d.
func (a *fakeAcker) next(d time.Duration) (settlement, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case s := <-a.settled:
		return s, true
	case <-timer.C:
		return settlement{}, false
	}
}

// startFakeSubscription starts the consumer's handler goroutines on a
// subscription fed by the returned channel instead of a broker; Close
// waits for them like for real ones.
func startFakeSubscription(c *Consumer, queue string) chan amqp.Delivery {
	deliveries := make(chan amqp.Delivery, 8)
	sub := &subscription{queue: queue, stallName: "consumer " + c.opts.Name + " on " + queue, deliveries: deliveries}
	sub.ctx, sub.cancel = context.WithCancel(c.handlerCtx)
	sub.watchdog = heartbeat.NewWatchdog(func(st heartbeat.Stall) { c.reportStall(sub, st) })
	c.startWorkers(sub)
	return deliveries
}

func closeConsumer(t *testing.T, c *Consumer, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Close(ctx)
}

func TestHandlerOutcomeSettlesDelivery(t *testing.T) {
	errFailed := errors.New("failed")
	tests := []struct {
		name        string
		opts        ConsumerOptions
		redelivered bool
		handler     Handler
		want        *settlement // nil: nothing is sent (AutoAck)
		errors      uint64
		panics      uint64
		event       EventKind
	}{
		{"success acks", ConsumerOptions{}, false, okHandler, &settlement{ack: true}, 0, 0, -1},
		{"error requeues by default", ConsumerOptions{}, true,
			func(context.Context, amqp.Delivery) error { return errFailed }, &settlement{requeue: true}, 1, 0, -1},
		{"RequeueOnce requeues a first failure", ConsumerOptions{OnError: RequeueOnce}, false,
			func(context.Context, amqp.Delivery) error { return errFailed }, &settlement{requeue: true}, 1, 0, -1},
		{"RequeueOnce rejects a redelivery", ConsumerOptions{OnError: RequeueOnce}, true,
			func(context.Context, amqp.Delivery) error { return errFailed }, &settlement{}, 1, 0, -1},
		{"RequeueNever rejects", ConsumerOptions{OnError: RequeueNever}, false,
			func(context.Context, amqp.Delivery) error { return errFailed }, &settlement{}, 1, 0, -1},
		{"panic nacks by policy and reports", ConsumerOptions{}, false,
			func(context.Context, amqp.Delivery) error { panic("boom") }, &settlement{requeue: true}, 0, 1, EventHandlerPanicked},
		{"Requeue requeues", ConsumerOptions{OnError: RequeueNever}, false,
			func(context.Context, amqp.Delivery) error { return fmt.Errorf("wrapped: %w", Requeue(errFailed)) },
			&settlement{requeue: true}, 1, 0, -1},
		{"Reject rejects", ConsumerOptions{OnError: RequeueAlways}, false,
			func(context.Context, amqp.Delivery) error { return Reject(nil) }, &settlement{}, 1, 0, -1},
		{"RetryAfter without retry queues requeues", ConsumerOptions{OnError: RequeueNever}, false,
			func(context.Context, amqp.Delivery) error { return RetryAfter(time.Second, errFailed) },
			&settlement{requeue: true}, 1, 0, -1},
		{"AutoAck settles nothing", ConsumerOptions{AutoAck: true}, false,
			func(context.Context, amqp.Delivery) error { return errFailed }, nil, 1, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := newEventLog()
			s := newUnreadySupervisor(t, events.handle)
			tt.opts.Name = "worker"
			c, err := s.Consume(context.Background(), NamedQueue("q"), tt.handler, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			acker := newFakeAcker()
			deliveries := startFakeSubscription(c, "q")
			deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 42, Redelivered: tt.redelivered}

			if tt.want != nil {
				got, ok := acker.next(defaultTestTimeout)
				want := *tt.want
				want.tag = 42
				if !ok || got != want {
					t.Errorf("settled %+v (%v), want %+v", got, ok, want)
				}
			} else if got, ok := acker.next(shortTestTimeout); ok {
				t.Errorf("settled %+v with AutoAck, want nothing", got)
			}
			if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st := s.Stats()
			if st.Delivered != 1 || st.HandlerErrors != tt.errors || st.HandlerPanics != tt.panics {
				t.Errorf("stats: delivered %d errors %d panics %d; want 1, %d, %d",
					st.Delivered, st.HandlerErrors, st.HandlerPanics, tt.errors, tt.panics)
			}
			if tt.event >= 0 {
				e := waitEvent(t, events, tt.event)
				if e.Consumer != "worker" || e.Queue != "q" || !errors.Is(e.Err, ErrHookPanicked) ||
					!strings.Contains(e.Err.Error(), "boom") {
					t.Errorf("event %+v does not name the consumer, queue and panic", e)
				}
			}
		})
	}
}

// waitEvent returns the first event of kind k from l.
func waitEvent(t *testing.T, l *eventLog, k EventKind) Event {
	t.Helper()
	timer := time.NewTimer(defaultTestTimeout)
	defer timer.Stop()
	for {
		select {
		case e := <-l.ch:
			if e.Kind == k {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %v event within %v", k, defaultTestTimeout)
		}
	}
}

func TestStalledHandlerIsReportedWithConsumerAndQueue(t *testing.T) {
	events := newEventLog()
	s := newUnreadySupervisor(t, events.handle) // StallThreshold 20ms
	release := make(chan struct{})
	c, err := s.Consume(context.Background(), NamedQueue("q"), func(context.Context, amqp.Delivery) error {
		<-release
		return nil
	}, ConsumerOptions{Name: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	deliveries := startFakeSubscription(c, "orders")
	deliveries <- amqp.Delivery{Acknowledger: newFakeAcker(), DeliveryTag: 1}

	e := waitEvent(t, events, EventStall)
	close(release)
	if e.Consumer != "slow" || e.Queue != "orders" || e.Stall == nil || e.Stall.Finished ||
		e.Stall.Name != "consumer slow on orders" || !strings.Contains(string(e.Stall.Stack), "TestStalledHandler") {
		t.Errorf("stall event %+v (stall %+v): want consumer, queue, name and the handler's stack", e, e.Stall)
	}
	if done := waitEvent(t, events, EventStall); done.Stall == nil || !done.Stall.Finished {
		t.Errorf("second stall event %+v, want the Finished report", done.Stall)
	}
	if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().Stalls; n != 1 {
		t.Errorf("Stats.Stalls = %d, want 1", n)
	}
}

func TestCloseWaitsForRunningHandlers(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		// handler holds the delivery until release, or until its ctx ends
		// when it honours ctx.
		honoursCtx bool
		wantErr    error
		wantSettle settlement
	}{
		{"handler finishes within ctx", defaultTestTimeout, false, nil, settlement{tag: 1, ack: true}},
		{"ctx ends first", shortTestTimeout, true, context.DeadlineExceeded, settlement{tag: 1, requeue: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newUnreadySupervisor(t, nil)
			started := make(chan struct{})
			release := make(chan struct{})
			var handlerErr error
			c, err := s.Consume(context.Background(), NamedQueue("q"), func(ctx context.Context, d amqp.Delivery) error {
				close(started)
				if tt.honoursCtx {
					<-ctx.Done()
					handlerErr = ctx.Err()
					return handlerErr
				}
				<-release
				return nil
			}, ConsumerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			acker := newFakeAcker()
			deliveries := startFakeSubscription(c, "q")
			deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 1}
			deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 2} // queued behind: must not be handled
			<-started
			go func() {
				time.Sleep(2 * shortTestTimeout)
				close(release)
			}()
			begin := time.Now()
			err = closeConsumer(t, c, tt.timeout)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Close = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && time.Since(begin) < 2*shortTestTimeout-10*time.Millisecond {
				t.Errorf("Close returned after %v, before the handler did", time.Since(begin))
			}
			if got, ok := acker.next(defaultTestTimeout); !ok || got != tt.wantSettle {
				t.Errorf("settled %+v (%v), want %+v", got, ok, tt.wantSettle)
			}
			if got, ok := acker.next(shortTestTimeout); ok {
				t.Errorf("the queued delivery was settled (%+v); it must be left to the broker", got)
			}
			if tt.honoursCtx && !errors.Is(handlerErr, context.Canceled) {
				t.Errorf("the handler's ctx ended with %v, want Canceled", handlerErr)
			}
		})
	}
}

func TestConcurrencyRunsHandlersInParallel(t *testing.T) {
	const n = 3
	s := newUnreadySupervisor(t, nil)
	var wg sync.WaitGroup
	wg.Add(n)
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	c, err := s.Consume(context.Background(), NamedQueue("q"), func(ctx context.Context, d amqp.Delivery) error {
		wg.Done()
		select { // every handler waits until all n run at once
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, ConsumerOptions{Concurrency: n})
	if err != nil {
		t.Fatal(err)
	}
	acker := newFakeAcker()
	deliveries := startFakeSubscription(c, "q")
	for i := 1; i <= n; i++ {
		deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: uint64(i)}
	}
	for i := 0; i < n; i++ {
		if got, ok := acker.next(defaultTestTimeout); !ok || !got.ack {
			t.Fatalf("settlement %d: %+v (%v); want %d handlers acking together", i, got, ok, n)
		}
	}
	if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFromHandlerDoesNotWaitForItself(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	var c *Consumer
	closed := make(chan error, 1)
	ready := make(chan struct{})
	c, err := s.Consume(context.Background(), NamedQueue("q"), func(ctx context.Context, d amqp.Delivery) error {
		<-ready
		// The documented rule: a handler closes its consumer with its own
		// ctx (or one derived from it), which tells Close who calls.
		derived, cancel := context.WithTimeout(ctx, defaultTestTimeout)
		defer cancel()
		closed <- c.Close(derived)
		return nil
	}, ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	acker := newFakeAcker()
	deliveries := startFakeSubscription(c, "q")
	deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 1}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close from the handler = %v, want nil", err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Close from the handler waited for the handler")
	}
	if got, ok := acker.next(defaultTestTimeout); !ok || !got.ack {
		t.Errorf("settled %+v (%v), want the handler's delivery acked", got, ok)
	}
	select {
	case <-c.done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the shutdown did not finish after the handler returned")
	}
}

// TestHandlerThatSettlesItselfIsNotSettledTwice: a handler calling d.Ack,
// d.Nack or d.Reject settles the delivery once, for that delivery alone, and
// warren does not settle it again (the broker would close the channel with
// 406 for the second settlement).
func TestHandlerThatSettlesItselfIsNotSettledTwice(t *testing.T) {
	tests := []struct {
		name    string
		opts    ConsumerOptions
		handler Handler
		want    *settlement
		second  bool // the handler's second settlement must return ErrDeliverySettled
	}{
		{"Ack multiple, then nil", ConsumerOptions{}, func(_ context.Context, d amqp.Delivery) error {
			return d.Ack(true)
		}, &settlement{ack: true}, false},
		{"Nack then error", ConsumerOptions{}, func(_ context.Context, d amqp.Delivery) error {
			_ = d.Nack(true, false)
			return errors.New("failed")
		}, &settlement{}, false},
		{"Reject requeue then nil", ConsumerOptions{}, func(_ context.Context, d amqp.Delivery) error {
			_ = d.Reject(true)
			return nil
		}, &settlement{requeue: true}, false},
		{"Ack twice", ConsumerOptions{}, func(_ context.Context, d amqp.Delivery) error {
			_ = d.Ack(false)
			if err := d.Ack(false); !errors.Is(err, ErrDeliverySettled) {
				return fmt.Errorf("second Ack = %v, want ErrDeliverySettled", err)
			}
			return nil
		}, &settlement{ack: true}, true},
		{"Ack under AutoAck", ConsumerOptions{AutoAck: true}, func(_ context.Context, d amqp.Delivery) error {
			return d.Ack(false)
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newUnreadySupervisor(t, nil)
			tt.opts.Name = "self-settling"
			c, err := s.Consume(context.Background(), NamedQueue("q"), tt.handler, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			acker := newFakeAcker()
			deliveries := startFakeSubscription(c, "q")
			deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: 7}
			if tt.want != nil {
				got, ok := acker.next(defaultTestTimeout)
				want := *tt.want
				want.tag = 7
				if !ok || got != want {
					t.Errorf("settled %+v (%v), want %+v", got, ok, want)
				}
			}
			if extra, ok := acker.next(shortTestTimeout); ok {
				t.Errorf("delivery settled a second time: %+v", extra)
			}
			if st := s.Stats(); st.HandlerErrors > 1 || (tt.second && st.HandlerErrors != 0) {
				t.Errorf("handler errors %d", st.HandlerErrors)
			}
			if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCountedRequeues: where no retry queue can hold a message, failures
// are counted by MessageId, so Redelivered (which a lost connection sets)
// is no failure; RequeueOnce rejects at the second failure and RetryBackoff
// after MaxAttempts; an ack forgets the count.
func TestCountedRequeues(t *testing.T) {
	errFailed := errors.New("failed")
	tests := []struct {
		name string
		opts ConsumerOptions
		want []bool // requeue flags of successive failures of one message
	}{
		{"RequeueOnce", ConsumerOptions{OnError: RequeueOnce}, []bool{true, false}},
		{"RetryBackoff without retry queues", ConsumerOptions{Retry: RetryPolicy{MaxAttempts: 3}}, []bool{true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newUnreadySupervisor(t, nil)
			c, err := s.Consume(context.Background(), &Queue{}, func(context.Context, amqp.Delivery) error {
				return errFailed
			}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			acker := newFakeAcker()
			deliveries := startFakeSubscription(c, "q")
			for round := 0; round < 2; round++ { // the second round: the count starts again after a reject
				for i, want := range tt.want {
					// Redelivered as after a lost connection, even the first time.
					deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: uint64(i + 1), MessageId: "m", Redelivered: true}
					got, ok := acker.next(defaultTestTimeout)
					if !ok || got.ack || got.requeue != want {
						t.Fatalf("round %d failure %d: settled %+v (%v), want requeue %v", round, i+1, got, ok, want)
					}
				}
			}
			if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// TestDedupeSkipsAcknowledgedIDs: a delivery whose MessageId was acked is
// acked again without a handler call; a failed one is not remembered.
func TestDedupeSkipsAcknowledgedIDs(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	calls := make(chan string, 8)
	c, err := s.Consume(context.Background(), NamedQueue("q"), func(_ context.Context, d amqp.Delivery) error {
		calls <- d.MessageId
		if string(d.Body) == "fail" {
			return Requeue(nil)
		}
		return nil
	}, ConsumerOptions{Dedupe: &DedupeOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	acker := newFakeAcker()
	deliveries := startFakeSubscription(c, "q")
	for i, m := range []struct{ id, body string }{{"a", "ok"}, {"a", "ok"}, {"b", "fail"}, {"b", "ok"}, {"", "ok"}, {"", "ok"}} {
		deliveries <- amqp.Delivery{Acknowledger: acker, DeliveryTag: uint64(i + 1), MessageId: m.id, Body: []byte(m.body)}
		if _, ok := acker.next(defaultTestTimeout); !ok {
			t.Fatalf("delivery %d not settled", i+1)
		}
	}
	if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(calls)
	var got []string
	for id := range calls {
		got = append(got, id)
	}
	if want := []string{"a", "b", "b", "", ""}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handler calls %q, want %q", got, want)
	}
}
