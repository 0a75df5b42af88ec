package conn

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRetryPolicyDefaults(t *testing.T) {
	p := RetryPolicy{}.withDefaults("orders")
	if len(p.Delays) != 4 || p.MaxAttempts != 5 || p.DeadQueue != "orders.dead" {
		t.Errorf("defaults = %+v, want 4 delays, 5 attempts, orders.dead", p)
	}
	if errs := p.validate(); len(errs) != 0 {
		t.Errorf("defaults do not validate: %v", errs)
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{Delays: []time.Duration{10 * time.Second, time.Second}}.withDefaults("q")
	tests := []struct {
		n     int
		asked time.Duration
		want  time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 10 * time.Second},
		{7, 0, 10 * time.Second},                // past the last delay: the last
		{1, 2 * time.Second, 10 * time.Second},  // rounded up
		{1, time.Millisecond, time.Second},      // rounded up to the shortest
		{1, time.Hour, 10 * time.Second},        // longer than all: the longest
		{5, 10 * time.Second, 10 * time.Second}, // exact
	}
	for _, tt := range tests {
		if got := p.delay(tt.n, tt.asked); got != tt.want {
			t.Errorf("delay(%d, %v) = %v, want %v", tt.n, tt.asked, got, tt.want)
		}
	}
}

func TestRetryPolicyTopology(t *testing.T) {
	top := RetryPolicy{Delays: []time.Duration{1500 * time.Millisecond}}.Topology("orders")
	if len(top.Queues) != 2 {
		t.Fatalf("%d queues, want a retry queue and the dead queue", len(top.Queues))
	}
	r, dead := top.Queues[0], top.Queues[1]
	if r.Name != "orders.retry.1.5s" || !r.Durable || r.Args["x-message-ttl"] != int64(1500) ||
		r.Args["x-dead-letter-exchange"] != "" || r.Args["x-dead-letter-routing-key"] != "orders" {
		t.Errorf("retry queue %+v", r)
	}
	if dead.Name != "orders.dead" || !dead.Durable {
		t.Errorf("dead queue %+v", dead)
	}
	if err := top.validate(); err != nil {
		t.Errorf("topology does not validate: %v", err)
	}
}

func TestRetriesOf(t *testing.T) {
	for _, v := range []any{int8(3), int16(3), int32(3), int64(3), uint8(3), 3} {
		if got := retriesOf(amqp.Table{RetryHeader: v}, RetryHeader); got != 3 {
			t.Errorf("retriesOf(%T) = %d, want 3", v, got)
		}
	}
	if got := retriesOf(amqp.Table{RetryHeader: "3"}, RetryHeader); got != 0 {
		t.Errorf("retriesOf(string) = %d, want 0", got)
	}
	if got := retriesOf(nil, RetryHeader); got != 0 {
		t.Errorf("retriesOf(nil) = %d, want 0", got)
	}
}

func TestRetryQueuesFollowAQuorumQueue(t *testing.T) {
	quorum := &Queue{Name: "orders", Durable: true, Args: amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}}
	tests := []struct {
		name string
		q    *Queue
		in   string
		want any
	}{
		{"quorum queue", quorum, "", amqp.QueueTypeQuorum},
		{"quorum queue, classic asked", quorum, amqp.QueueTypeClassic, amqp.QueueTypeClassic},
		{"named queue", NamedQueue("orders"), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := RetryPolicy{QueueType: tt.in}.forQueue(tt.q)
			for _, q := range p.Topology("orders").Queues {
				if got := q.Args[amqp.QueueTypeArg]; got != tt.want {
					t.Errorf("%s: type %v, want %v", q.Name, got, tt.want)
				}
			}
		})
	}
	if errs := (RetryPolicy{QueueType: "stream"}).withDefaults("q").validate(); len(errs) != 1 {
		t.Errorf("a stream retry queue validates: %v", errs)
	}
}
