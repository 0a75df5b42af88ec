package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

var retryQueueName = conn.RetryQueueName

var errFailed = errors.New("failed on purpose")

// TestOutcomes: each outcome a handler can choose does what its doc says
// the broker does, on a queue that dead-letters to QUEUE.dead: Ack deletes
// the message; Requeue delivers it again at once (Redelivered set); Reject
// dead-letters it; Reject on a queue without a dead-letter exchange drops
// it; a handler that settles the message itself is not settled again,
// whatever it returns.
func TestOutcomes(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	tests := []struct {
		name      string
		noDLX     bool
		results   []func(amqp.Delivery) error // one per handler call
		wantDead  bool
		wantCalls int
	}{
		{"Ack", false, []func(amqp.Delivery) error{ok}, false, 1},
		{"Requeue", false, []func(amqp.Delivery) error{fail(conn.Requeue(errFailed)), ok}, false, 2},
		{"Reject dead-letters", false, []func(amqp.Delivery) error{fail(conn.Reject(errFailed))}, true, 1},
		{"Reject without a DLX drops", true, []func(amqp.Delivery) error{fail(conn.Reject(errFailed))}, false, 1},
		{"settled by the handler", false, []func(amqp.Delivery) error{func(d amqp.Delivery) error {
			if err := d.Nack(false, false); err != nil {
				return err
			}
			return conn.Requeue(errFailed) // ignored: the handler chose already
		}}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queue := uniqueName(t, "q")
			dead := queue + ".dead"
			adm.durableQueue(dead, nil)
			var args amqp.Table
			if !tt.noDLX {
				var err error
				if args, err = (conn.QueueArgs{DeadLetter: conn.DeadLetterToQueue(dead)}).Table(); err != nil {
					t.Fatal(err)
				}
			}
			adm.queue(queue, args)
			s, rec := start(t, conn.Options{URLs: []string{b.URL}})
			got := newCalls()
			consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
				n := got.add(d)
				return tt.results[min(n, len(tt.results))-1](d)
			}, conn.ConsumerOptions{OnError: conn.RequeueNever})
			waitReady(t, s)
			adm.publish("", queue, "m")
			got.waitFor(t, tt.wantCalls, defaultTestTimeout)
			if tt.wantDead {
				if _, ok := adm.get(dead, defaultTestTimeout); !ok {
					t.Errorf("the message is not in %s", dead)
				}
			}
			time.Sleep(quietPeriod) // for a call or a redelivery that must not happen
			all := got.snapshot()
			if len(all) != tt.wantCalls {
				t.Errorf("%d handler calls, want %d", len(all), tt.wantCalls)
			}
			if tt.wantCalls == 2 && !all[1].redelivered {
				t.Error("the requeued message came back without Redelivered")
			}
			if n := adm.messages(queue); n != 0 {
				t.Errorf("%d messages left in %s, want 0", n, queue)
			}
			if n := adm.messages(dead); n != 0 {
				t.Errorf("%d messages left in %s, want 0", n, dead)
			}
			for _, e := range rec.Snapshot() {
				if e.Kind == conn.EventConsumerChannelClosed {
					t.Errorf("the consumer's channel was closed: %v", e.Err)
				}
			}
		})
	}
}

func ok(amqp.Delivery) error { return nil }

func fail(err error) func(amqp.Delivery) error {
	return func(amqp.Delivery) error { return err }
}

// TestRetryDelaysAreHonoured: a message that always fails, under the default
// failure outcome (RetryBackoff), is handled again after each delay of the
// policy (within 10 %), carries its retry count in x-warren-retries, and
// after MaxAttempts calls lands in QUEUE.dead with the count and the last
// error. RetryAfter rounds its delay up to the policy's next one. The delays
// are seconds long so that 10 % covers the scheduling noise of a shared
// machine (we saw 0.3 s); the two cases run in parallel.
func TestRetryDelaysAreHonoured(t *testing.T) {
	b := broker.Shared(t)
	delays := []time.Duration{4 * time.Second, 6 * time.Second}
	tests := []struct {
		name   string
		result error
		gaps   []time.Duration
	}{
		{"RetryBackoff", errFailed, []time.Duration{4 * time.Second, 6 * time.Second}},
		{"RetryAfter", conn.RetryAfter(5*time.Second, errFailed), []time.Duration{6 * time.Second, 6 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			adm := newAdmin(t, b) // its own: the subtests run in parallel
			queue := uniqueName(t, "q")
			adm.deleteRetryQueues(queue, delays...)
			adm.queue(queue, nil)
			s, rec := start(t, conn.Options{URLs: []string{b.URL}})
			got := newCalls()
			consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
				got.add(d)
				return tt.result
			}, conn.ConsumerOptions{Retry: conn.RetryPolicy{Delays: delays, MaxAttempts: 3}})
			waitReady(t, s)
			adm.publish("", queue, "poison")
			all := got.waitFor(t, 3, 4*defaultTestTimeout)
			for i, c := range all {
				var want any
				if i > 0 {
					want = int32(i)
				}
				if c.retries != want {
					t.Errorf("call %d: x-warren-retries %v (%T), want %v", i+1, c.retries, c.retries, want)
				}
				if i == 0 {
					continue
				}
				// The broker times the delay with Erlang's clock, which time
				// correction may run up to 1 % fast (seen: 4 s as 3.964 s).
				gap, d := c.at.Sub(all[i-1].at), tt.gaps[i-1]
				t.Logf("retry %d after %v (delay %v)", i, gap, d)
				if gap < d-d/100 || gap > d+d/10 {
					t.Errorf("retry %d after %v, want %v within 10%%", i, gap, d)
				}
			}
			m, ok := adm.get(queue+".dead", defaultTestTimeout)
			if !ok {
				t.Fatalf("the message is not in %s.dead", queue)
			}
			if string(m.Body) != "poison" || m.MessageId != "poison" || m.DeliveryMode != amqp.Persistent ||
				m.Headers["x-warren-retries"] != int32(3) || m.Headers["x-warren-error"] == nil {
				t.Errorf("dead message %q id %q mode %d headers %v", m.Body, m.MessageId, m.DeliveryMode, m.Headers)
			}
			time.Sleep(quietPeriod)
			if n := len(got.snapshot()); n != 3 {
				t.Errorf("%d handler calls, want MaxAttempts (3)", n)
			}
			for _, e := range rec.Snapshot() {
				if e.Kind == conn.EventConsumerChannelClosed {
					t.Errorf("the consumer's channel was closed: %v", e.Err)
				}
			}
		})
	}
}

// TestQuorumDeliveryLimit: the plain alternative to retry queues. A quorum
// queue with a delivery limit of 2 and a dead-letter queue, consumed with
// RequeueAlways, hands a message that always fails to the handler 3 times
// (the first delivery and 2 redeliveries), then dead-letters it.
func TestQuorumDeliveryLimit(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	dead := queue + ".dead"
	adm.durableQueue(dead, nil)
	s, _ := start(t, conn.Options{URLs: []string{b.URL}})
	q := declareQuorum(t, s, adm, queue, conn.QueueArgs{DeliveryLimit: 2, DeadLetter: conn.DeadLetterToQueue(dead)})
	got := newCalls()
	consume(t, s, q, got.failing, conn.ConsumerOptions{OnError: conn.RequeueAlways})
	waitReady(t, s)
	adm.publish("", queue, "poison")
	if _, ok := adm.get(dead, 2*defaultTestTimeout); !ok {
		t.Fatalf("the message is not in %s", dead)
	}
	time.Sleep(quietPeriod)
	if n := len(got.snapshot()); n != 3 {
		t.Errorf("%d handler calls, want 3 (delivery limit 2)", n)
	}
}

// TestRetryQueuesOfAQuorumQueue: a consumer of a quorum queue declared by a
// Topology gets quorum retry and dead queues (a classic one would be
// unavailable while its node is down); the broker's TTL and dead-lettering
// work there too: the retry comes after the delay and the message ends in
// the dead queue.
func TestRetryQueuesOfAQuorumQueue(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	delay := 4 * time.Second // 10 % of it covers a loaded machine's noise
	adm.deleteRetryQueues(queue, delay)
	s, _ := start(t, conn.Options{URLs: []string{b.URL}})
	q := declareQuorum(t, s, adm, queue, conn.QueueArgs{})
	got := newCalls()
	consume(t, s, q, got.failing, conn.ConsumerOptions{Retry: conn.RetryPolicy{Delays: []time.Duration{delay}, MaxAttempts: 2}})
	waitReady(t, s)
	adm.publish("", queue, "poison")
	all := got.waitFor(t, 2, 2*defaultTestTimeout)
	if gap := all[1].at.Sub(all[0].at); gap < delay-delay/100 || gap > delay+delay/10 {
		t.Errorf("retry after %v, want %v within 10%%", gap, delay)
	}
	if _, ok := adm.get(queue+".dead", defaultTestTimeout); !ok {
		t.Fatalf("the message is not in %s.dead", queue)
	}
	// Declaring the same queues as quorum queues succeeds only if they are.
	top := conn.RetryPolicy{Delays: []time.Duration{delay}, QueueType: amqp.QueueTypeQuorum}.Topology(queue)
	for _, rq := range top.Queues {
		if _, err := adm.ch.QueueDeclare(rq.Name, true, false, false, false, rq.Args); err != nil {
			t.Fatalf("%s is not a quorum queue: %v", rq.Name, err)
		}
	}
}

// declareQuorum declares the quorum queue name with the rest of qa through
// a Topology of s, and deletes it at cleanup.
func declareQuorum(t *testing.T, s *conn.Supervisor, adm *admin, name string, qa conn.QueueArgs) *conn.Queue {
	t.Helper()
	qa.Type = amqp.QueueTypeQuorum
	args, err := qa.Table()
	if err != nil {
		t.Fatal(err)
	}
	q := &conn.Queue{Name: name, Durable: true, Args: args}
	if _, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), conn.Topology{Queues: []*conn.Queue{q}}); err != nil {
		t.Fatalf("DeclareTopology: %v", err)
	}
	t.Cleanup(func() { adm.deleteQueue(name) })
	return q
}

// TestStreamQueue: a stream declared with QueueArgs is consumed like a
// queue, from the offset in ConsumerOptions.Args ("first": the whole log).
func TestStreamQueue(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "stream")
	args, err := conn.QueueArgs{Type: amqp.QueueTypeStream, MaxLengthBytes: 1 << 20}.Table()
	if err != nil {
		t.Fatal(err)
	}
	adm.durableQueue(queue, args)
	adm.publish("", queue, "a", "b", "c")
	s, _ := start(t, conn.Options{URLs: []string{b.URL}})
	got := newCalls()
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		got.add(d)
		return nil
	}, conn.ConsumerOptions{OnError: conn.RequeueNever, Args: amqp.Table{"x-stream-offset": "first"}})
	all := got.waitFor(t, 3, defaultTestTimeout)
	for i, want := range []string{"a", "b", "c"} {
		if all[i].id != want {
			t.Errorf("delivery %d is %q, want %q", i, all[i].id, want)
		}
	}
}
