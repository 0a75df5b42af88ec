package consumer_test

// Adversarial tests against the consumer lifecycle redesign. A failure is a
// defect.

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// Guarantee 7: a Topology-declared queue deleted under its consumer is
// declared again "with its bindings". The documented Topology allows a
// binding whose queue another Topology declares ("Their queues need not be
// in Queues"); redeclare only looks at q.owner (the last Topology listing the
// queue in Queues), so the binding from the other Topology is lost and
// messages routed through it vanish, while the supervisor reports success.
func TestAttackRedeclareLosesBindingFromAnotherTopology(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	exchange := uniqueName(t, "x")
	q := &conn.Queue{Name: uniqueName(t, "q")}
	t.Cleanup(func() {
		adm.deleteQueue(q.Name)
		_ = adm.ch.ExchangeDelete(exchange, false, false)
	})
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	ctx := testCtx(t, defaultTestTimeout)
	// The queue's module declares the queue; the routing module binds it.
	if _, err := s.DeclareTopology(ctx, conn.Topology{Queues: []*conn.Queue{q}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeclareTopology(ctx, conn.Topology{
		Exchanges: []conn.Exchange{{Name: exchange, Kind: amqp.ExchangeFanout}},
		Bindings:  []conn.Binding{{Queue: q, Exchange: exchange}},
	}); err != nil {
		t.Fatal(err)
	}
	got := make(chan amqp.Delivery, 4)
	consume(t, s, q, forward(got), conn.ConsumerOptions{Name: "two-topologies"})
	waitReady(t, s)
	adm.publish(exchange, "", "before")
	receive(t, got, "before the deletion")

	from := rec.Count()
	adm.deleteQueue(q.Name)
	rec.WaitFor(t, from, defaultTestTimeout, "QueueRedeclared", consumerEvent(conn.EventQueueRedeclared, "two-topologies"))
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerResubscribed", consumerEvent(conn.EventConsumerResubscribed, "two-topologies"))
	adm.publish(exchange, "", "after")
	select {
	case d := <-got:
		if string(d.Body) != "after" {
			t.Errorf("got %q, want %q", d.Body, "after")
		}
	case <-time.After(defaultTestTimeout):
		t.Errorf("queue re-declared without the binding another Topology declares for it: a message published to %s never arrived", exchange)
	}
}

// Guarantee 7, the other way round: a queue listed in two Topologies is
// owned by the last one only. If that one lists the queue but not its
// binding (the binding is in the first), re-declaration drops the binding.
func TestAttackRedeclareQueueInTwoTopologiesUsesLastOnly(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	exchange := uniqueName(t, "x")
	q := &conn.Queue{Name: uniqueName(t, "q")}
	t.Cleanup(func() {
		adm.deleteQueue(q.Name)
		_ = adm.ch.ExchangeDelete(exchange, false, false)
	})
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	ctx := testCtx(t, defaultTestTimeout)
	if _, err := s.DeclareTopology(ctx, conn.Topology{
		Exchanges: []conn.Exchange{{Name: exchange, Kind: amqp.ExchangeFanout}},
		Queues:    []*conn.Queue{q},
		Bindings:  []conn.Binding{{Queue: q, Exchange: exchange}},
	}); err != nil {
		t.Fatal(err)
	}
	// A second module that also needs the queue to exist.
	if _, err := s.DeclareTopology(ctx, conn.Topology{Queues: []*conn.Queue{q}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan amqp.Delivery, 4)
	consume(t, s, q, forward(got), conn.ConsumerOptions{Name: "listed-twice"})
	waitReady(t, s)
	adm.publish(exchange, "", "before")
	receive(t, got, "before the deletion")

	from := rec.Count()
	adm.deleteQueue(q.Name)
	rec.WaitFor(t, from, defaultTestTimeout, "QueueRedeclared", consumerEvent(conn.EventQueueRedeclared, "listed-twice"))
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerResubscribed", consumerEvent(conn.EventConsumerResubscribed, "listed-twice"))
	adm.publish(exchange, "", "after")
	select {
	case d := <-got:
		if string(d.Body) != "after" {
			t.Errorf("got %q, want %q", d.Body, "after")
		}
	case <-time.After(defaultTestTimeout):
		t.Errorf("queue re-declared from the last Topology listing it, without the first one's binding: a message published to %s never arrived", exchange)
	}
}

// DeclareTopology: "The returned func stops re-declaring t". After remove,
// a consumer whose queue is deleted still declares it again from the removed
// Topology (q.owner is never cleared), recreating a queue the application
// deleted on purpose.
func TestAttackRemovedTopologyStillRedeclaresQueue(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	q := &conn.Queue{Name: uniqueName(t, "q")}
	t.Cleanup(func() { adm.deleteQueue(q.Name) })
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	remove, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), conn.Topology{Queues: []*conn.Queue{q}})
	if err != nil {
		t.Fatal(err)
	}
	consume(t, s, q, forward(make(chan amqp.Delivery, 4)), conn.ConsumerOptions{Name: "removed-topology"})
	waitReady(t, s)
	remove() // stop re-declaring the queue
	from := rec.Count()
	adm.deleteQueue(q.Name)
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerCancelled", consumerEvent(conn.EventConsumerCancelled, "removed-topology"))
	time.Sleep(2 * time.Second) // several retries (fastPolicy)
	for _, e := range rec.Snapshot()[from:] {
		if e.Kind == conn.EventQueueRedeclared {
			t.Errorf("queue %s declared again from a Topology whose remove func was called: %v", q.Name, e.Err)
			break
		}
	}
}

// Guarantee 4/6: a consumer handler that decides to stop the whole service
// calls Supervisor.Close. Close waits for every lent goroutine (s.work),
// which includes the handler calling it, so it always runs into the bound:
// it takes the whole CloseTimeout and reports the caller itself as a
// "goroutine still running". (Consumer.Close from a handler is special-cased
// for exactly this; Supervisor.Close is special-cased only for OnEvent.)
func TestAttackSupervisorCloseFromConsumerHandler(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	const closeTimeout = 3 * time.Second
	s, _ := start(t, conn.Options{URLs: []string{b.URL}, CloseTimeout: closeTimeout})
	type result struct {
		err  error
		took time.Duration
	}
	res := make(chan result, 1)
	_, err := s.Consume(testCtx(t, defaultTestTimeout), conn.NamedQueue(queue), func(ctx context.Context, d amqp.Delivery) error {
		start := time.Now()
		// The documented rule: a handler passes its own ctx, which tells
		// Close who calls. (With an unrelated ctx Close is still bounded,
		// by CloseTimeout, since it waits for this very handler.)
		err := s.Close(ctx)
		res <- result{err, time.Since(start)}
		return nil
	}, conn.ConsumerOptions{Name: "fatal"})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	adm.publish("", queue, "stop everything")
	select {
	case r := <-res:
		if r.err != nil || r.took > closeTimeout/2 {
			t.Errorf("Supervisor.Close from a consumer handler took %v and returned %v; want a prompt nil (it waits for its own caller)",
				r.took.Round(time.Millisecond), r.err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Supervisor.Close from a consumer handler did not return")
	}
}

// Guarantee 7 and NamedQueue's doc ("a reference to the queue called name
// ... when the queue is declared elsewhere (by another service, or by a
// Topology of its own)"): a consumer that names a Topology's queue with
// NamedQueue, as documented, never gets it declared again: ownership is
// kept on the *Queue pointer the Topology holds, not on the queue name, so
// the consumer retries against 404 until the connection happens to be lost.
func TestAttackNamedQueueOfTopologyNotRedeclared(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	name := uniqueName(t, "q")
	t.Cleanup(func() { adm.deleteQueue(name) })
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	if _, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), conn.Topology{Queues: []*conn.Queue{{Name: name}}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan amqp.Delivery, 4)
	consume(t, s, conn.NamedQueue(name), forward(got), conn.ConsumerOptions{Name: "by-name"})
	waitReady(t, s)
	from := rec.Count()
	adm.deleteQueue(name)
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerCancelled", consumerEvent(conn.EventConsumerCancelled, "by-name"))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range rec.Snapshot()[from:] {
			if e.Kind == conn.EventConsumerResubscribed && e.Consumer == "by-name" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("queue %s, declared by a Topology and consumed through NamedQueue, was not declared again within 5s of its deletion; the consumer is stuck retrying", name)
}
