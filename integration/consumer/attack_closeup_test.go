package consumer_test

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// Consumer.Close: "No goroutine of the consumer outlives Close". Its Up
// (c.up, on the supervisor goroutine) checks c.closing once, then
// subscribes. A Close that lands during that subscribe finds no
// subscription, waits for no worker and returns; the subscription then
// completes after Close returned, starts workers (not waited for), sees
// closing and drops the channel. Meanwhile the broker delivers to it: with
// AutoAck those messages are gone from the queue after Close returned, and
// the workers may still call the handler (acquire picks a slot or stop at
// random). Seeded: the seed fixes the delay of each Close.
func TestAttackConsumerCloseDuringResubscribeConsumesAfterReturn(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url := newKiller(t, b, user, pass)
	adm := newAdmin(t, b)
	s, _ := start(t, conn.Options{URLs: []string{url}})
	waitReady(t, s)
	const messages = 200
	for iter := 0; iter < 25; iter++ {
		queue := uniqueName(t, "q")
		adm.queue(queue, nil)
		delay := time.Duration(rng.Intn(3000)) * time.Microsecond
		var (
			armed       atomic.Bool
			closedAt    atomic.Int64 // unix nanos when Close returned
			lateCalls   atomic.Int32
			c           *conn.Consumer
			mu          sync.Mutex
			depthAtDone = -1
			closeErr    error
		)
		closeDone := make(chan struct{})
		publishErr := make(chan error, 1)
		if _, err := s.AddHook(testCtx(t, defaultTestTimeout), conn.Hook{Name: fmt.Sprintf("feeder %d", iter), Phase: conn.PhaseConsumers,
			Up: func(_ context.Context, ac *amqp.Connection) error {
				if !armed.CompareAndSwap(true, false) {
					return nil
				}
				// Fill the queue on the new connection, then close the consumer
				// while its Up (next in line) subscribes.
				ch, err := ac.Channel()
				if err == nil {
					err = ch.Confirm(false)
				}
				if err == nil {
					for i := 0; i < messages && err == nil; i++ {
						var dc *amqp.DeferredConfirmation
						dc, err = ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{Body: []byte("m")})
						if err == nil && i == messages-1 {
							_, err = dc.WaitContext(context.Background())
						}
					}
					_ = ch.Close()
				}
				publishErr <- err
				go func() {
					defer close(closeDone)
					time.Sleep(delay)
					ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
					defer cancel()
					err := c.Close(ctx)
					closedAt.Store(time.Now().UnixNano())
					mu.Lock()
					closeErr = err
					mu.Unlock()
				}()
				return nil
			}}); err != nil {
			t.Fatal(err)
		}
		var err error
		c, err = s.Consume(testCtx(t, defaultTestTimeout), conn.NamedQueue(queue), func(context.Context, amqp.Delivery) error {
			if closedAt.Load() != 0 {
				lateCalls.Add(1)
			}
			return nil
		}, conn.ConsumerOptions{Name: fmt.Sprintf("late-%d", iter), AutoAck: true, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		armed.Store(true)
		if err := k.kill(testCtx(t, killRequestTimeout)); err != nil {
			t.Fatal(err)
		}
		if err := <-publishErr; err != nil {
			t.Fatalf("iteration %d: feeding the queue: %v", iter, err)
		}
		<-closeDone
		mu.Lock()
		if closeErr != nil {
			t.Errorf("iteration %d: Close: %v", iter, closeErr)
		}
		mu.Unlock()
		depthAtDone = adm.messages(queue)
		time.Sleep(300 * time.Millisecond)
		depthLater := adm.messages(queue)
		if depthLater < depthAtDone || lateCalls.Load() > 0 {
			t.Fatalf("seed %d, iteration %d (Close after %v): after Consumer.Close returned, %d messages left the queue (%d -> %d) and the handler ran %d time(s)",
				seed, iter, delay, depthAtDone-depthLater, depthAtDone, depthLater, lateCalls.Load())
		}
		waitReady(t, s)
	}
}
