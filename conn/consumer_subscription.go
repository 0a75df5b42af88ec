package conn

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// subscription is one consumer channel on one connection, with the
// Concurrency handler goroutines that drain its deliveries.
type subscription struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	queue      string // the queue's name on conn
	stallName  string // "consumer NAME on QUEUE"
	deliveries <-chan amqp.Delivery
	// retries: the retry queues are declared on conn, so OutcomeRetry can
	// use them.
	retries bool
	// closed and cancelled have capacity 1 and receive at most one value
	// each (one channel.close, one basic.cancel for our single consumer tag),
	// so amqp091-go never waits on them, even while run is busy.
	closed    <-chan *amqp.Error
	cancelled <-chan string
	// ctx is the handlers' context: it ends when the subscription is dropped,
	// since their deliveries can no longer be acknowledged.
	ctx    context.Context
	cancel context.CancelFunc
	// watchdog reports stalled handlers with the consumer and queue named;
	// stall keeps the last report, for the event of a consumer_timeout.
	watchdog *heartbeat.Watchdog
	stall    atomic.Pointer[heartbeat.Stall]
}

// subscribe opens a channel on conn, sets the prefetch and starts consuming;
// the caller starts the handler goroutines once it keeps the subscription.
// On error nothing is left open.
func (c *Consumer) subscribe(conn *amqp.Connection) (sub *subscription, err error) {
	queue, err := c.q.nameOn(conn)
	if err != nil {
		return nil, err
	}
	retries, err := c.declareRetries(conn, queue)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	defer func() {
		if err != nil && ch != nil {
			_ = closeChannel(context.Background(), ch, c.s.opts.CloseTimeout)
		}
	}()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	cancelled := ch.NotifyCancel(make(chan string, 1))
	if !c.opts.AutoAck {
		if err := ch.Qos(c.opts.Prefetch, 0, false); err != nil {
			return nil, fmt.Errorf("set prefetch: %w", err)
		}
	}
	deliveries, err := c.consumeBounded(ch, queue)
	if errors.Is(err, errConsumeStalled) {
		ch = nil // consumeBounded closes it once the broker answers
	}
	if err != nil {
		return nil, fmt.Errorf("consume %q: %w", queue, closeReason(err, closed))
	}
	sub = &subscription{
		conn:       conn,
		ch:         ch,
		queue:      queue,
		stallName:  "consumer " + c.opts.Name + " on " + queue,
		deliveries: deliveries,
		retries:    retries,
		closed:     closed,
		cancelled:  cancelled,
	}
	sub.ctx, sub.cancel = context.WithCancel(c.handlerCtx)
	sub.watchdog = heartbeat.NewWatchdog(func(st heartbeat.Stall) { c.reportStall(sub, st) })
	return sub, nil
}

// declareRetries declares the consumer's retry and dead queues on conn, if
// it retries through them. It reports whether they are there; it fails only
// when conn died. A refusal (no configure permission, queues that exist with
// other arguments) is logged, and the subscription goes ahead with counted
// requeues instead (see RetryBackoff): consuming matters more.
func (c *Consumer) declareRetries(conn *amqp.Connection, queue string) (bool, error) {
	if c.pub == nil {
		return false, nil
	}
	err := declareTopology(context.Background(), conn, c.opts.Retry.Topology(queue))
	if err == nil {
		return true, nil
	}
	if conn.IsClosed() {
		return false, err
	}
	c.s.log.Warn("warren: consumer could not declare its retry queues; failed messages are requeued and "+
		"rejected after Retry.MaxAttempts", "consumer", c.opts.Name, "queue", queue, "err", err)
	return false, nil
}

// startWorkers starts sub's Concurrency handler goroutines, counted by the
// consumer (for its Close) and by the supervisor (for its own).
func (c *Consumer) startWorkers(sub *subscription) {
	for i := 0; i < c.opts.Concurrency; i++ {
		c.workers.add() // before the goroutine starts, so that Close's Wait sees it
		c.s.work.Go(func() {
			defer c.workers.done()
			c.work(sub)
		})
	}
}

// drop ends a subscription: its handlers' context is cancelled and its
// channel closed, which requeues whatever it had not acknowledged. The
// handler goroutines exit once their current call returns.
func (c *Consumer) drop(sub *subscription) {
	sub.cancel()
	if err := closeChannel(context.Background(), sub.ch, c.s.opts.CloseTimeout); err != nil {
		c.s.log.Warn("warren: consumer channel close failed", "consumer", c.opts.Name, "queue", sub.queue, "err", err)
	}
}

// closeChannel closes ch, bounded by ctx and timeout: channel.close waits
// for the broker's close-ok, which a blocked or partitioned connection may
// never bring. Past the bound the close goes on in the background and ends
// with the connection.
// closeReason returns the broker's reason for closing a channel when err is
// amqp091-go's ErrClosed for an RPC the close cut short: a basic.consume on
// a missing queue fails with the broker's 404 channel.close, which
// amqp091-go, when the frame lands while the RPC waits, reports as "504
// channel/connection is not open". amqp091-go hands the reason to the
// channel's NotifyClose listeners before it fails the RPC.
func closeReason(err error, closed <-chan *amqp.Error) error {
	if !errors.Is(err, amqp.ErrClosed) {
		return err
	}
	select {
	case reason, ok := <-closed:
		if ok && reason != nil {
			return reason
		}
	default:
	}
	return err
}

func closeChannel(ctx context.Context, ch *amqp.Channel, timeout time.Duration) error {
	if ch.IsClosed() {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- ch.Close() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-t.C:
		err = fmt.Errorf("close channel: no answer within %v", timeout)
	case <-ctx.Done():
		err = fmt.Errorf("close channel: %w", ctx.Err())
	}
	if err != nil && isClosedErr(err) {
		return nil // gone already: nothing left to close
	}
	var ae *amqp.Error
	if errors.As(err, &ae) && ch.IsClosed() {
		// The connection died under the close (a forced close answers it
		// with 320): the channel is gone, which is all the close asked for.
		return nil
	}
	return err
}

// consumeTimeout bounds the wait for a basic.consume to take effect. A quorum queue's
// member answers a consume only once it knows a leader: during an election
// (about a second), or for as long as a majority is gone, which on RabbitMQ
// 3.10 holds the channel up to net_ticktime + 5 s (65 s) per member asked.
// Past the bound the subscription is retried on a fresh channel, under the
// consumer's backoff, so a stuck channel does not hold the consumer until
// the dead-peer limit.
const consumeTimeout = 5 * time.Second

// errConsumeStalled is the error of a basic.consume that did not take
// effect within consumeTimeout.
var errConsumeStalled = errors.New("basic.consume not done")

// consumeBounded starts consuming queue on ch and waits at most
// consumeTimeout for the broker to have done it. Past it, it returns an error wrapping
// errConsumeStalled and leaves ch to a goroutine that waits for the
// broker's answer (or the channel's end) and then closes ch: closing it
// while the consume is pending would release its channel number for reuse
// while the broker still has it open, and whatever the late consumer
// receives is requeued with the channel.
func (c *Consumer) consumeBounded(ch *amqp.Channel, queue string) (<-chan amqp.Delivery, error) {
	type result struct {
		d   <-chan amqp.Delivery
		err error
	}
	answer := make(chan result, 1)
	c.s.work.Go(func() {
		// noWait, then a basic.qos as a barrier (a channel handles its
		// methods in order, so its qos-ok comes after the consume took
		// effect, and a refused consume closes the channel, which fails
		// the qos with the broker's error, a 404 included). RabbitMQ 3.10
		// sends a quorum queue's consume-ok before its checkout, and runs
		// the whole consume again when the checkout exits because the
		// leader's node went away: two consume-oks for one basic.consume,
		// and rabbit_channel:consumer_monitor crashes the channel on the
		// second with {key_exists, Tag}, taking the connection down
		// without a close. A consume without an answer sends no
		// consume-ok, and registers the tag once.
		d, err := ch.Consume(queue, c.opts.Name, c.opts.AutoAck, c.opts.Exclusive, false, true, c.opts.Args)
		if err == nil {
			prefetch := c.opts.Prefetch
			if c.opts.AutoAck {
				prefetch = 0
			}
			err = ch.Qos(prefetch, 0, false)
		}
		answer <- result{d, err}
	})
	t := time.NewTimer(consumeTimeout)
	defer t.Stop()
	// Not cut short by Close: a consume the broker did is dropped by the
	// attempt, channel closed, before the Close that waits for the attempt
	// returns, so an AutoAck consumer takes nothing after Close returned.
	select {
	case r := <-answer:
		return r.d, r.err
	case <-t.C:
	}
	err := fmt.Errorf("%w within %v; retrying on a fresh channel", errConsumeStalled, consumeTimeout)
	c.s.work.Go(func() {
		<-answer // the broker answers, or the channel or connection ends
		_ = closeChannel(context.Background(), ch, c.s.opts.CloseTimeout)
	})
	return nil, err
}
