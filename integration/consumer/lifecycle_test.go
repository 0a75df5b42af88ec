package consumer_test

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestConcurrencyHoldsAcrossRecoveries: at no instant do more than
// Concurrency handler calls of one consumer run, while its connection is
// killed under running handlers (whose deliveries come back redelivered to
// the next subscription while the old calls still run). Seeded: the seed,
// printed on failure, fixes Concurrency, the handlers' pace and the kills.
func TestConcurrencyHoldsAcrossRecoveries(t *testing.T) {
	for concurrency := 1; concurrency <= 2; concurrency++ {
		seed := time.Now().UnixNano()
		t.Run(fmt.Sprintf("concurrency=%d/seed=%d", concurrency, seed), func(t *testing.T) {
			concurrencyUnderKills(t, concurrency, seed)
		})
	}
}

func concurrencyUnderKills(t *testing.T, concurrency int, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url := newKiller(t, b, user, pass)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	const messages = 30
	bodies := make([]string, messages)
	for i := range bodies {
		bodies[i] = strconv.Itoa(i)
	}
	adm.publish("", queue, bodies...)

	pace := make([]time.Duration, messages) // each message's handling time
	for i := range pace {
		pace[i] = time.Duration(20+rng.Intn(130)) * time.Millisecond
	}
	var (
		running, most atomic.Int32
		mu            sync.Mutex
		seen          = map[string]bool{}
		allSeen       = make(chan struct{})
	)
	s, _ := start(t, conn.Options{URLs: []string{url}})
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		i, _ := strconv.Atoi(d.MessageId)
		// The handler ignores its ctx on purpose: a call that outlives its
		// subscription is what a new subscription must wait for.
		time.Sleep(pace[i%messages])
		mu.Lock()
		defer mu.Unlock()
		if !seen[d.MessageId] {
			seen[d.MessageId] = true
			if len(seen) == messages {
				close(allSeen)
			}
		}
		return nil
	}, conn.ConsumerOptions{Name: "bounded", Concurrency: concurrency, Prefetch: 2 * concurrency})
	waitReady(t, s)

	kills := 0
	deadline := time.After(2 * time.Minute)
	for done := false; !done; {
		select {
		case <-allSeen:
			done = true
		case <-deadline:
			t.Fatalf("seed %d: not every message handled in time", seed)
		case <-time.After(time.Duration(50+rng.Intn(250)) * time.Millisecond):
			if kills < 8 && running.Load() > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), killRequestTimeout)
				if err := k.kill(ctx); err != nil {
					t.Logf("kill: %v", err)
				} else {
					kills++
				}
				cancel()
			}
		}
	}
	if m := most.Load(); m > int32(concurrency) {
		t.Errorf("seed %d: %d handler calls ran at once, Concurrency %d (%d kills by %s)", seed, m, concurrency, kills, k.how)
	}
	t.Logf("seed %d: Concurrency %d, at most %d at once, %d kills by %s, %d reconnects", seed, concurrency,
		most.Load(), kills, k.how, s.Stats().Reconnects)
}

// TestTopologyQueueDeletedUnderConsumerIsDeclaredAgain: a queue that a
// Topology declares and that is deleted while its consumer runs is declared
// again, with its binding, by the consumer's recovery (as the Java client's
// topology recovery does), reported as EventQueueRedeclared, without losing
// the connection.
func TestTopologyQueueDeletedUnderConsumerIsDeclaredAgain(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	exchange := uniqueName(t, "x")
	q := &conn.Queue{Name: uniqueName(t, "q")}
	t.Cleanup(func() {
		adm.deleteQueue(q.Name)
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
	got := make(chan amqp.Delivery, 4)
	consume(t, s, q, forward(got), conn.ConsumerOptions{Name: "owned"})
	waitReady(t, s)
	adm.publish(exchange, "", "before")
	receive(t, got, "before the deletion")

	from := rec.Count()
	adm.deleteQueue(q.Name)
	e, _ := rec.WaitFor(t, from, defaultTestTimeout, "QueueRedeclared", consumerEvent(conn.EventQueueRedeclared, "owned"))
	if e.Queue != q.Name {
		t.Errorf("QueueRedeclared names %q, want %q", e.Queue, q.Name)
	}
	rec.WaitFor(t, from, defaultTestTimeout, "ConsumerResubscribed", consumerEvent(conn.EventConsumerResubscribed, "owned"))
	adm.publish(exchange, "", "after") // through the binding declared again
	if d := receive(t, got, "after the queue was declared again"); string(d.Body) != "after" {
		t.Errorf("got %q, want %q", d.Body, "after")
	}
	if st := s.Stats(); st.ConnectionsLost != 0 {
		t.Errorf("the connection was lost %d times", st.ConnectionsLost)
	}
}
