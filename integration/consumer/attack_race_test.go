package consumer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// boundQueues lists the queues bound to exchange, through the management API.
func boundQueues(t *testing.T, b *broker.Broker, exchange string) []string {
	t.Helper()
	if b.MgmtURL == "" {
		t.Skip("no management API")
	}
	u, err := url.Parse(b.MgmtURL)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	name := u.User.Username()
	u.User = nil
	endpoint := strings.TrimSuffix(u.String(), "/") + "/api/exchanges/%2F/" + url.PathEscape(exchange) + "/bindings/source"
	req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
	req.SetBasicAuth(name, pass)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: killRequestTimeout}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var bs []struct {
		Destination string `json:"destination"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", endpoint, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&bs); err != nil {
		t.Fatalf("bindings of %s (%s): %v", exchange, resp.Status, err)
	}
	var out []string
	for _, b := range bs {
		out = append(out, b.Destination)
	}
	return out
}

// Guarantee 7 with a server-named queue and two consumers of it (the
// documented way to consume one server-named queue with two handlers): the
// queue is deleted, both consumers are cancelled at once and retry at once
// (the first retry has no delay), both get 404 and both declare the queue
// again. Each redeclare asks the broker for a new name: two queues now exist,
// both bound, and only the last one is consumed. The other gets a copy of
// every message routed through the binding, for as long as the connection
// lives (for ever if not exclusive). Seeded only by timing; it tries several
// deletions.
func TestAttackServerNamedRedeclareRaceDuplicatesQueue(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	exchange := uniqueName(t, "x")
	q := &conn.Queue{} // server-named
	t.Cleanup(func() {
		for _, name := range boundQueues(t, b, exchange) {
			adm.deleteQueue(name)
		}
		_ = adm.ch.ExchangeDelete(exchange, false, false)
	})
	s, rec := start(t, conn.Options{URLs: []string{b.URL}})
	if _, err := s.DeclareTopology(testCtx(t, defaultTestTimeout), conn.Topology{
		Exchanges: []conn.Exchange{{Name: exchange, Kind: amqp.ExchangeFanout}},
		Queues:    []*conn.Queue{q},
		Bindings:  []conn.Binding{{Queue: q, Exchange: exchange}},
	}); err != nil {
		t.Fatal(err)
	}
	got := make(chan amqp.Delivery, 64)
	consume(t, s, q, forward(got), conn.ConsumerOptions{Name: "a"})
	consume(t, s, q, forward(got), conn.ConsumerOptions{Name: "b"})
	waitReady(t, s)
	for round := 0; round < 8; round++ {
		from := rec.Count()
		adm.deleteQueue(q.CurrentName())
		rec.WaitFor(t, from, defaultTestTimeout, "a resubscribed", consumerEvent(conn.EventConsumerResubscribed, "a"))
		rec.WaitFor(t, from, defaultTestTimeout, "b resubscribed", consumerEvent(conn.EventConsumerResubscribed, "b"))
		if bound := boundQueues(t, b, exchange); len(bound) != 1 {
			n := 0
			for _, e := range rec.Snapshot()[from:] {
				if e.Kind == conn.EventQueueRedeclared {
					n++
				}
			}
			t.Fatalf("round %d: after one deletion %d queues are bound to %s (%v), %d QueueRedeclared events; consumers use %s",
				round, len(bound), exchange, bound, n, q.CurrentName())
		}
	}
}

// Supervisor.Close "closes every consumer the same way before it closes the
// connection", and Consumer.Close lets running handlers "finish within ctx
// (they can still acknowledge)". An application shutting down closes its
// consumer and its supervisor concurrently (errgroup, or two deferred
// closers on different goroutines): Consumer.Close unregisters the hook at
// once, so Supervisor.Close no longer waits for that consumer and closes the
// connection under the running handler; its ack is lost and the message is
// delivered again although it was handled.
func TestAttackConcurrentConsumerAndSupervisorCloseLosesAck(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	s, _ := start(t, conn.Options{URLs: []string{b.URL}})
	entered := make(chan struct{})
	release := make(chan struct{})
	c, err := s.Consume(testCtx(t, defaultTestTimeout), conn.NamedQueue(queue), func(ctx context.Context, d amqp.Delivery) error {
		close(entered)
		<-release
		return nil // ack
	}, conn.ConsumerOptions{Name: "in-flight"})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	adm.publish("", queue, "handled once")
	select {
	case <-entered:
	case <-time.After(defaultTestTimeout):
		t.Fatal("no delivery")
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	consumerClosed := make(chan error, 1)
	go func() { consumerClosed <- c.Close(ctx) }()
	// Consumer.Close has started (it unregisters the hook first thing).
	time.Sleep(200 * time.Millisecond)
	supClosed := make(chan error, 1)
	go func() { supClosed <- s.Close(ctx) }()
	// Give Supervisor.Close the time to do what it does before the handler
	// returns; the handler is well within both Close contexts.
	time.Sleep(500 * time.Millisecond)
	close(release)
	cerr, serr := <-consumerClosed, <-supClosed
	// The message was handled and the handler returned nil within both
	// Close bounds: it must be acknowledged, not back in the queue.
	deadline := time.Now().Add(2 * time.Second)
	n := adm.messages(queue)
	for n == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = adm.messages(queue)
	}
	if n != 0 {
		t.Errorf("a message handled successfully within Close's bound is back in the queue (%d ready): its ack was lost because Supervisor.Close closed the connection under the Consumer.Close in progress (Consumer.Close: %v, Supervisor.Close: %v)", n, cerr, serr)
	}
}
