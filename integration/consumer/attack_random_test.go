package consumer_test

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestAttackConsumerRandomized: a consumer (random Concurrency, Prefetch,
// handler pace) under random connection kills and channel failures (a
// handler acks its delivery twice now and then: 406 on the channel), closed
// at a random moment. Checked: never more than Concurrency handler calls at
// once (guarantee 5); no handler call starts after Consumer.Close returned;
// Consumer.Close returns nil within its bound. Seeded; the seed is printed.
func TestAttackConsumerRandomized(t *testing.T) {
	for run := 0; run < 3; run++ {
		seed := time.Now().UnixNano()
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { consumerRandomized(t, seed) })
	}
}

func consumerRandomized(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url := newKiller(t, b, user, pass)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	bodies := make([]string, 300)
	for i := range bodies {
		bodies[i] = strconv.Itoa(i)
	}
	adm.publish("", queue, bodies...)
	concurrency := 1 + rng.Intn(3)
	prefetch := concurrency + rng.Intn(5)
	pace := make([]time.Duration, 64)
	for i := range pace {
		pace[i] = time.Duration(rng.Intn(25)) * time.Millisecond
	}
	doubleAck := rng.Intn(3) == 0
	var (
		running, most atomic.Int32
		calls         atomic.Int64
		closeReturned atomic.Bool
		late          atomic.Int32
	)
	s, _ := start(t, conn.Options{URLs: []string{url}})
	c, err := s.Consume(testCtx(t, defaultTestTimeout), conn.NamedQueue(queue), func(ctx context.Context, d amqp.Delivery) error {
		if closeReturned.Load() {
			late.Add(1)
		}
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		i := calls.Add(1)
		select {
		case <-time.After(pace[i%int64(len(pace))]):
		case <-ctx.Done():
		}
		if doubleAck && i%37 == 0 {
			_ = d.Ack(false) // the worker acks again: 406 PRECONDITION_FAILED closes the channel
		}
		return nil
	}, conn.ConsumerOptions{Name: "random", Concurrency: concurrency, Prefetch: prefetch})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	chaosRng := rand.New(rand.NewSource(rng.Int63()))
	go func() {
		defer close(chaosDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+chaosRng.Intn(300)) * time.Millisecond):
			}
			if chaosRng.Intn(2) == 0 {
				_ = k.kill(context.Background())
			}
		}
	}()
	time.Sleep(time.Duration(300+rng.Intn(2500)) * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	start := time.Now()
	cerr := c.Close(ctx)
	took := time.Since(start)
	closeReturned.Store(true)
	cancel()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-chaosDone
	t.Logf("concurrency %d prefetch %d doubleAck %v: %d calls, most at once %d, Close took %v",
		concurrency, prefetch, doubleAck, calls.Load(), most.Load(), took.Round(time.Millisecond))
	if m := most.Load(); int(m) > concurrency {
		t.Errorf("seed %d: %d handler calls at once, Concurrency %d", seed, m, concurrency)
	}
	if n := late.Load(); n > 0 {
		t.Errorf("seed %d: %d handler call(s) started after Consumer.Close returned", seed, n)
	}
	if cerr != nil {
		t.Errorf("seed %d: Consumer.Close: %v", seed, cerr)
	}
}

// Guarantee 4 with a handler that ignores its ctx: Supervisor.Close with no
// deadline returns within CloseTimeout (with an error), not after the handler.
func TestAttackCloseTimeoutWithStuckHandler(t *testing.T) {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s, err := conn.New(conn.Options{URLs: []string{b.URL}, CloseTimeout: time.Second, Logger: quietLogger(t), Reconnect: fastPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(release); <-s.Done() }()
	if _, err := s.Consume(testCtx(t, defaultTestTimeout), conn.NamedQueue(queue), func(context.Context, amqp.Delivery) error {
		entered <- struct{}{}
		<-release // ignores ctx
		return nil
	}, conn.ConsumerOptions{Name: "stuck"}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	adm.publish("", queue, "stuck")
	<-entered
	start := time.Now()
	err = s.Close(context.Background())
	took := time.Since(start)
	t.Logf("Close took %v: %v", took.Round(time.Millisecond), err)
	if took > 3*time.Second {
		t.Errorf("Close(Background) with CloseTimeout 1s took %v with a stuck handler", took)
	}
}

// Connection loss while the consumer's retry timer is armed, then the queue
// appears: exactly one broker-side consumer must result (no duplicate
// subscription from the stale timer racing the new connection's Up).
func TestAttackLossDuringRetryTimerSingleSubscription(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url := newKiller(t, b, user, pass)
	adm := newAdmin(t, b)
	s, rec := start(t, conn.Options{URLs: []string{url}})
	waitReady(t, s)
	for iter := 0; iter < 5; iter++ {
		queue := uniqueName(t, "q")
		name := fmt.Sprintf("retrying-%d", iter)
		from := rec.Count()
		consume(t, s, conn.NamedQueue(queue), func(context.Context, amqp.Delivery) error { return nil }, conn.ConsumerOptions{Name: name})
		rec.WaitFor(t, from, defaultTestTimeout, "ChannelClosed", consumerEvent(conn.EventConsumerChannelClosed, name))
		time.Sleep(time.Duration(iter*20) * time.Millisecond)
		if err := k.kill(testCtx(t, killRequestTimeout)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(iter*15) * time.Millisecond)
		adm.queue(queue, nil)
		rec.WaitFor(t, from, defaultTestTimeout, "Resubscribed", consumerEvent(conn.EventConsumerResubscribed, name))
		time.Sleep(time.Second) // let any stale retry fire
		q, err := adm.ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Consumers != 1 {
			t.Errorf("iteration %d: %d broker-side consumers on %s, want 1", iter, q.Consumers, queue)
		}
	}
}
