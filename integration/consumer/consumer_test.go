package consumer_test

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// receive waits for one delivery on got.
func receive(t *testing.T, got <-chan amqp.Delivery, what string) amqp.Delivery {
	t.Helper()
	timer := time.NewTimer(defaultTestTimeout)
	defer timer.Stop()
	select {
	case d := <-got:
		return d
	case <-timer.C:
		t.Fatalf("%s: no delivery within %v", what, defaultTestTimeout)
	}
	return amqp.Delivery{}
}

// nothing fails the test if got yields a delivery within quietPeriod.
func nothing(t *testing.T, got <-chan amqp.Delivery, what string) {
	t.Helper()
	timer := time.NewTimer(quietPeriod)
	defer timer.Stop()
	select {
	case d := <-got:
		t.Errorf("%s: unexpected delivery %q (redelivered %v)", what, d.Body, d.Redelivered)
	case <-timer.C:
	}
}

// forward returns a handler that passes every delivery to got and acks it.
func forward(got chan<- amqp.Delivery) conn.Handler {
	return func(_ context.Context, d amqp.Delivery) error {
		got <- d
		return nil
	}
}

// TestQueueDeletedUnderConsumer: deleting the queue makes the broker cancel
// the consumer (basic.cancel). That is an event naming the consumer and the
// queue; the consumer retries with backoff on the same connection and
// consumes again once the queue is back.
func TestQueueDeletedUnderConsumer(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	got := make(chan amqp.Delivery, 4)
	consume(t, s, conn.NamedQueue(queue), forward(got), conn.ConsumerOptions{Name: "orphan"})
	waitReady(t, s)
	adm.publish("", queue, "before")
	receive(t, got, "before the deletion")

	adm.deleteQueue(queue)
	cancelled, from := rec.WaitFor(t, 0, defaultTestTimeout, "ConsumerCancelled",
		consumerEvent(conn.EventConsumerCancelled, "orphan"))
	if cancelled.Queue != queue || cancelled.Err == nil {
		t.Errorf("cancel event: queue %q err %v, want queue %q and an error", cancelled.Queue, cancelled.Err, queue)
	}
	// While the queue is missing every attempt is refused with 404.
	refused, _ := rec.WaitFor(t, from, defaultTestTimeout, "ConsumerChannelClosed",
		consumerEvent(conn.EventConsumerChannelClosed, "orphan"))
	var ae *amqp.Error
	if !errors.As(refused.Err, &ae) || ae.Code != amqp.NotFound {
		t.Errorf("refused resubscription: %v, want a 404 NOT_FOUND", refused.Err)
	}

	adm.queue(queue, nil)
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerResubscribed", consumerEvent(conn.EventConsumerResubscribed, "orphan"))
	adm.publish("", queue, "after")
	if d := receive(t, got, "after the queue came back"); string(d.Body) != "after" {
		t.Errorf("got %q, want %q", d.Body, "after")
	}
	if st := s.Stats(); st.ConnectionsLost != 0 {
		t.Errorf("the connection was lost %d times; a cancelled consumer must not cost the connection", st.ConnectionsLost)
	}
}

// TestMissingQueueAtConnect: a consumer of a queue that does not exist yet
// must not fail the connection: the supervisor becomes Ready with every
// other hook up, the refusal is an event, and the consumer starts once the
// queue exists.
func TestMissingQueueAtConnect(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	got := make(chan amqp.Delivery, 4)
	consume(t, s, conn.NamedQueue(queue), forward(got), conn.ConsumerOptions{Name: "early"})
	var laterHookRan atomic.Bool
	if _, err := s.AddHook(testCtx(t, defaultTestTimeout), conn.Hook{
		Name:  "publisher stand-in",
		Phase: conn.PhasePublishers,
		Up:    func(context.Context, *amqp.Connection) error { laterHookRan.Store(true); return nil },
	}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	if !laterHookRan.Load() {
		t.Error("Ready before the later hook ran")
	}
	refused, from := rec.WaitFor(t, 0, defaultTestTimeout, "ConsumerChannelClosed",
		consumerEvent(conn.EventConsumerChannelClosed, "early"))
	if !strings.Contains(refused.Err.Error(), queue) {
		t.Errorf("refusal %v does not name the queue %q", refused.Err, queue)
	}
	if st := s.Stats(); st.HookFailures != 0 {
		t.Errorf("%d hook failures; a missing queue must not fail the connection", st.HookFailures)
	}

	adm.queue(queue, nil)
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerResubscribed", consumerEvent(conn.EventConsumerResubscribed, "early"))
	adm.publish("", queue, "hello")
	receive(t, got, "once the queue exists")
}

// consumerTimeout and channelTick shorten RabbitMQ's consumer_timeout (30
// minutes by default) for one test. RabbitMQ 3.10 reads consumer_timeout
// when a channel opens, but checks it only on the channel's tick, every
// channel_tick_interval (60 s by default, re-read at every tick), so both
// are lowered before the consumer's channel opens.
const (
	consumerTimeout = 3000 // ms
	channelTick     = 500  // ms
)

// envValue matches one {ok,N} of rabbitmqctl eval's output.
var envValue = regexp.MustCompile(`\{ok,(\d+)\}`)

// shortenConsumerTimeout lowers consumer_timeout and channel_tick_interval
// on the node and restores the old values at cleanup.
func shortenConsumerTimeout(t *testing.T, b *broker.Broker) {
	t.Helper()
	out, err := b.Faults.Eval(testCtx(t, faultTimeout), `Old = {application:get_env(rabbit, consumer_timeout), `+
		`application:get_env(rabbit, channel_tick_interval)}, `+
		`application:set_env(rabbit, consumer_timeout, `+strconv.Itoa(consumerTimeout)+`), `+
		`application:set_env(rabbit, channel_tick_interval, `+strconv.Itoa(channelTick)+`), Old.`)
	if err != nil {
		t.Fatalf("set consumer_timeout: %v", err)
	}
	old := envValue.FindAllStringSubmatch(out, -1)
	if len(old) != 2 {
		t.Fatalf("unexpected previous values %q", out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
		defer cancel()
		if _, err := b.Faults.Eval(ctx, `application:set_env(rabbit, consumer_timeout, `+old[0][1]+`), `+
			`application:set_env(rabbit, channel_tick_interval, `+old[1][1]+`).`); err != nil {
			t.Errorf("restore consumer_timeout: %v", err)
		}
	})
}

// TestConsumerTimeout: a handler holds its delivery past the broker's
// consumer_timeout. The broker closes the channel with 406
// PRECONDITION_FAILED; that is an event naming the consumer and carrying the
// stall report of the handler that held it, the handler's ctx is cancelled,
// the consumer resubscribes, and the message comes back with Redelivered set.
func TestConsumerTimeout(t *testing.T) {
	b := broker.Shared(t)
	shortenConsumerTimeout(t, b)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	adm.publish("", queue, "slow")

	s, rec := start(t, conn.Options{URLs: []string{b.URL}, StallThreshold: time.Second})
	held := make(chan error, 1)
	got := make(chan amqp.Delivery, 4)
	consume(t, s, conn.NamedQueue(queue), func(ctx context.Context, d amqp.Delivery) error {
		if !d.Redelivered {
			<-ctx.Done() // hold it until warren gives up on it
			held <- ctx.Err()
			return ctx.Err()
		}
		got <- d
		return nil
	}, conn.ConsumerOptions{Name: "sleeper"})
	waitReady(t, s)

	stall, from := rec.WaitFor(t, 0, defaultTestTimeout, "Stall", consumerEvent(conn.EventStall, "sleeper"))
	if stall.Queue != queue || stall.Stall == nil || !strings.Contains(stall.Stall.Name, "sleeper") ||
		!strings.Contains(stall.Stall.Name, queue) {
		t.Errorf("stall event names consumer %q queue %q stall %+v; want both named", stall.Consumer, stall.Queue, stall.Stall)
	}
	closed, from := rec.WaitFor(t, from, defaultTestTimeout, "ConsumerChannelClosed",
		consumerEvent(conn.EventConsumerChannelClosed, "sleeper"))
	t.Logf("channel closed after %v: %v", closed.Time.Sub(stall.Time)+time.Second, closed.Err)
	var ae *amqp.Error
	if !errors.As(closed.Err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Errorf("channel closed with %v, want 406 PRECONDITION_FAILED", closed.Err)
	}
	if closed.Stall == nil || closed.Stall.Finished || len(closed.Stall.Stack) == 0 {
		t.Errorf("channel-closed event carries stall %+v, want the stuck handler's report with its stack", closed.Stall)
	}
	select {
	case err := <-held:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("held handler's ctx ended with %v, want Canceled", err)
		}
	case <-testCtx(t, defaultTestTimeout).Done():
		t.Error("the handler's ctx was not cancelled when its channel died")
	}
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerResubscribed", consumerEvent(conn.EventConsumerResubscribed, "sleeper"))
	if d := receive(t, got, "redelivery"); string(d.Body) != "slow" || !d.Redelivered {
		t.Errorf("got %q redelivered %v, want %q redelivered", d.Body, d.Redelivered, "slow")
	}
	if st := s.Stats(); st.ConnectionsLost != 0 {
		t.Errorf("the connection was lost %d times; a consumer_timeout closes only the channel", st.ConnectionsLost)
	}
}

// TestCloseWithHandlerInFlight: Consumer.Close lets the running handler
// finish within ctx (its ack counts) and leaves the unhandled prefetched
// message to the broker, which redelivers it to the next consumer with
// Redelivered set. When ctx ends first, the handler's ctx is cancelled,
// Close returns ctx's error, and the held message is redelivered too.
func TestCloseWithHandlerInFlight(t *testing.T) {
	tests := []struct {
		name         string
		closeTimeout time.Duration
		// handler holds the first delivery; release ends the hold.
		hold        func(ctx context.Context, release <-chan struct{}) error
		wantErr     error
		redelivered []string // bodies the next consumer gets, in order
	}{
		{
			name:         "handler finishes within ctx",
			closeTimeout: defaultTestTimeout,
			hold: func(ctx context.Context, release <-chan struct{}) error {
				<-release
				return nil
			},
			redelivered: []string{"second"},
		},
		{
			name:         "ctx ends first",
			closeTimeout: 300 * time.Millisecond,
			hold: func(ctx context.Context, release <-chan struct{}) error {
				<-ctx.Done()
				return ctx.Err()
			},
			wantErr:     context.DeadlineExceeded,
			redelivered: []string{"first", "second"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := broker.Shared(t)
			adm := newAdmin(t, b)
			queue := uniqueName(t, "q")
			adm.queue(queue, nil)
			adm.publish("", queue, "first", "second")
			s, _ := start(t, conn.Options{URLs: []string{b.URL}, StallThreshold: time.Minute})

			started := make(chan struct{})
			release := make(chan struct{})
			var returned atomic.Bool
			c, err := s.Consume(testCtx(t, defaultTestTimeout), conn.NamedQueue(queue), func(ctx context.Context, d amqp.Delivery) error {
				if string(d.Body) != "first" {
					t.Errorf("handled %q: the prefetched message must be left to the broker", d.Body)
					return nil
				}
				close(started)
				defer returned.Store(true)
				return tt.hold(ctx, release)
			}, conn.ConsumerOptions{Name: "leaver", Prefetch: 2})
			if err != nil {
				t.Fatal(err)
			}
			<-started
			go func() {
				time.Sleep(quietPeriod) // Close must wait this long
				close(release)
			}()
			begin := time.Now()
			err = c.Close(testCtx(t, tt.closeTimeout))
			t.Logf("Close returned after %v: %v", time.Since(begin).Round(time.Millisecond), err)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Close = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !returned.Load() {
				t.Error("Close returned before the handler did")
			}
			if err := c.Close(testCtx(t, defaultTestTimeout)); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("second Close = %v, want the same result %v", err, tt.wantErr)
			}

			got := make(chan amqp.Delivery, 4)
			consume(t, s, conn.NamedQueue(queue), forward(got), conn.ConsumerOptions{Name: "next"})
			for _, want := range tt.redelivered {
				d := receive(t, got, "the next consumer")
				if string(d.Body) != want || !d.Redelivered {
					t.Errorf("next consumer got %q redelivered %v, want %q redelivered", d.Body, d.Redelivered, want)
				}
			}
			nothing(t, got, "the next consumer after the redeliveries")
		})
	}
}

// TestHandlerPanic: a panicking handler is recovered; the delivery is
// handled like an error (requeued, with OnError RequeueAlways), the panic is an event naming the consumer
// and queue and a counter, and the consumer goes on with the next message
// and the redelivery.
func TestHandlerPanic(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	got := make(chan amqp.Delivery, 8)
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		if string(d.Body) == "boom" && !d.Redelivered {
			panic("handler bug")
		}
		got <- d
		return nil
	}, conn.ConsumerOptions{Name: "fragile", OnError: conn.RequeueAlways})
	waitReady(t, s)
	adm.publish("", queue, "boom", "next")

	panicked, _ := rec.WaitFor(t, 0, defaultTestTimeout, "HandlerPanicked", consumerEvent(conn.EventHandlerPanicked, "fragile"))
	if panicked.Queue != queue || !errors.Is(panicked.Err, conn.ErrHookPanicked) || !strings.Contains(panicked.Err.Error(), "handler bug") {
		t.Errorf("panic event: queue %q err %v; want the queue and the panic value", panicked.Queue, panicked.Err)
	}
	bodies := map[string]bool{}
	for i := 0; i < 2; i++ {
		d := receive(t, got, "after the panic")
		bodies[string(d.Body)] = true
		if string(d.Body) == "boom" && !d.Redelivered {
			t.Error("the panicked message came back without Redelivered")
		}
	}
	if !bodies["boom"] || !bodies["next"] {
		t.Errorf("handled %v, want both the requeued message and the next one", bodies)
	}
	nothing(t, got, "after both messages")
	if st := s.Stats(); st.HandlerPanics != 1 || st.HandlerErrors != 0 || st.Delivered != 3 {
		t.Errorf("stats: panics %d errors %d delivered %d, want 1, 0, 3", st.HandlerPanics, st.HandlerErrors, st.Delivered)
	}
	if n := adm.messages(queue); n != 0 {
		t.Errorf("%d messages left in the queue, want 0", n)
	}
}
