package conn

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRetriesEnabled(t *testing.T) {
	tests := []struct {
		name string
		q    *Queue
		opts ConsumerOptions
		want bool
	}{
		{"default on a named queue", NamedQueue("orders"), ConsumerOptions{}, true},
		{"server-named queue", &Queue{}, ConsumerOptions{}, false},
		{"exclusive queue", &Queue{Name: "mine", Exclusive: true}, ConsumerOptions{}, false},
		{"AutoAck", NamedQueue("orders"), ConsumerOptions{AutoAck: true}, false},
		{"another OnError", NamedQueue("orders"), ConsumerOptions{OnError: RequeueNever}, false},
		{"another OnError with delays", NamedQueue("orders"),
			ConsumerOptions{OnError: RequeueNever, Retry: RetryPolicy{Delays: []time.Duration{time.Second}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retriesEnabled(tt.q, tt.opts); got != tt.want {
				t.Errorf("retriesEnabled = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSupervisorCloseClosesRetryingConsumer: a consumer with retries owns a
// publisher; Supervisor.Close closes both, promptly, with nothing left
// running (goleak checks the package).
func TestSupervisorCloseClosesRetryingConsumer(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	c, err := s.Consume(context.Background(), NamedQueue("orders"), okHandler, ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.pub == nil {
		t.Fatal("a consumer with the default OnError has no retry publisher")
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	begin := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(begin); took > defaultTestTimeout/2 {
		t.Errorf("Close took %v", took)
	}
}

// TestOnlyRetryingConsumersDeclareRetryQueues: the retry publisher (and
// with it the retry queues) exists only when the options ask for retries,
// judged before the defaults fill the policy in.
func TestOnlyRetryingConsumersDeclareRetryQueues(t *testing.T) {
	s := newUnreadySupervisor(t, nil)
	for _, tt := range []struct {
		opts ConsumerOptions
		want bool
	}{
		{ConsumerOptions{}, true},
		{ConsumerOptions{OnError: RequeueAlways}, false},
		{ConsumerOptions{OnError: RequeueNever, Retry: RetryPolicy{Delays: []time.Duration{time.Second}}}, true},
	} {
		c, err := s.Consume(context.Background(), NamedQueue("orders"), okHandler, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.pub != nil; got != tt.want {
			t.Errorf("OnError %v, Delays %v: retry publisher %v, want %v", tt.opts.OnError, tt.opts.Retry.Delays, got, tt.want)
		}
		if err := closeConsumer(t, c, defaultTestTimeout); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestCopyOfDropsWhatWouldMisroute(t *testing.T) {
	d := amqp.Delivery{UserId: "someone", MessageId: "m", DeliveryMode: amqp.Persistent, Body: []byte("b"),
		Headers: amqp.Table{"CC": []any{"other"}, "BCC": []any{"x"}, "k": "v"}}
	p := copyOf(d, copyHeaders(d.Headers))
	if p.UserId != "" || p.Headers["CC"] != nil || p.Headers["BCC"] != nil || p.Headers["k"] != "v" ||
		p.MessageId != "m" || p.DeliveryMode != amqp.Persistent || string(p.Body) != "b" {
		t.Errorf("copy %+v", p)
	}
	if d.Headers["CC"] == nil {
		t.Error("the copy changed the delivery's headers")
	}
	if got := truncate("abcdef", 3); got != "abc" {
		t.Errorf("truncate = %q", got)
	}
}
