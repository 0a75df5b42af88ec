package conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// run is the consumer's goroutine: it watches the live subscription, arms
// resubscriptions after a channel failure on a live connection, and carries
// out Close. It never calls back into the Supervisor's blocking methods.
func (c *Consumer) run() {
	defer close(c.done)
	var retry *time.Timer // armed while a resubscription waits for its backoff
	disarm := func() {
		if retry != nil {
			retry.Stop()
			retry = nil
		}
	}
	defer disarm()
	for {
		c.mu.Lock()
		sub, delay := c.sub, c.retryDelay
		c.retryDelay = 0
		c.mu.Unlock()
		if delay > 0 {
			disarm()
			retry = time.NewTimer(delay)
		}
		var closed <-chan *amqp.Error
		var cancelled <-chan string
		if sub != nil {
			closed, cancelled = sub.closed, sub.cancelled
		}
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		select {
		case <-c.wake:
		case amqpErr := <-closed:
			err := errors.New("channel closed")
			if amqpErr != nil {
				err = fmt.Errorf("channel closed by the broker: %w", amqpErr)
			}
			c.lost(sub, err)
		case <-cancelled:
			c.lost(sub, nil)
		case <-retryC:
			retry = nil
			c.retry()
		case req := <-c.closes:
			disarm()
			// Wait for an attempt under way (Up on the supervisor's
			// goroutine) to end, so its subscription is this shutdown's to
			// end; an attempt stuck on the broker past ctx sees closing and
			// drops its subscription itself.
			held := false
			select {
			case c.attempting <- struct{}{}:
				held = true
			case <-req.ctx.Done():
			}
			c.mu.Lock()
			sub := c.sub
			c.sub = nil
			c.mu.Unlock()
			c.closeErr = c.shutdown(sub, req)
			if held {
				<-c.attempting
			}
			c.unregister()
			req.release()
			return
		}
	}
}

// lost handles the end of sub while run was watching it: the broker closed
// its channel (err) or cancelled the consumer (err nil). Unless the
// connection went with it (then Down and the next Up take over), the
// failure is reported and a resubscription is armed.
func (c *Consumer) lost(sub *subscription, err error) {
	c.attempting <- struct{}{}
	defer func() { <-c.attempting }()
	c.mu.Lock()
	if c.sub == sub {
		c.sub = nil
	}
	c.mu.Unlock()
	c.drop(sub)
	c.sched.Lost()
	if sub.conn.IsClosed() {
		return
	}
	c.armRetryLocked(c.backoffLocked(err, sub))
}

// retry makes a resubscription attempt on the current connection, if the
// consumer still has none there.
func (c *Consumer) retry() {
	c.attempting <- struct{}{}
	defer func() { <-c.attempting }()
	c.mu.Lock()
	conn, idle := c.conn, c.sub == nil && !c.closing
	c.mu.Unlock()
	if conn != nil && idle && !conn.IsClosed() {
		_ = c.attemptLocked(conn)
	}
}

// attemptLocked subscribes on conn. On success the subscription becomes the
// live one (unless conn was replaced or Close started meanwhile); after a
// refusal on a live connection the failure is reported and a retry armed.
// It returns the subscription error. Caller must hold c.attempting.
func (c *Consumer) attemptLocked(conn *amqp.Connection) error {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return nil // Close started: no subscription may begin after it
	}
	sub, err := c.subscribeOrRedeclare(conn)
	if err != nil {
		if !conn.IsClosed() {
			c.armRetryLocked(c.backoffLocked(err, nil))
		}
		return err
	}
	c.mu.Lock()
	if c.closing || c.conn != conn {
		// Its handlers never start: nothing it was sent is handled after
		// Close began, and the broker requeues it with the channel.
		c.mu.Unlock()
		c.drop(sub)
		return nil
	}
	c.sub = sub
	// Under c.mu: a shutdown that finds sub also finds its workers counted.
	c.startWorkers(sub)
	c.mu.Unlock()
	c.sched.Connected()
	if c.announce {
		c.s.emit(Event{Kind: EventConsumerResubscribed, Consumer: c.opts.Name, Queue: sub.queue})
	}
	c.announce = true
	c.poke()
	return nil
}

// armRetryLocked asks run to arm a resubscription after delay. Caller must
// hold c.attempting.
func (c *Consumer) armRetryLocked(delay time.Duration) {
	c.mu.Lock()
	if c.conn != nil && !c.closing {
		c.retryDelay = max(delay, time.Nanosecond)
	}
	c.mu.Unlock()
	c.poke()
}

// backoffLocked reports a subscription that failed (err) or was cancelled
// by the broker (err nil), and returns the delay before the next attempt.
// lost is the subscription that ended, if any; its stall report goes with
// the event, as the likely reason a delivery was held past
// consumer_timeout. Caller must hold c.attempting.
func (c *Consumer) backoffLocked(err error, lost *subscription) time.Duration {
	c.announce = true
	delay, serr := c.sched.Next()
	queue := c.q.describe()
	e := Event{Consumer: c.opts.Name, Queue: queue, Attempt: c.sched.Attempt(), Delay: delay}
	if lost != nil {
		e.Queue = lost.queue
		e.Stall = lost.stall.Load()
	}
	if err == nil {
		e.Kind = EventConsumerCancelled
		e.Err = fmt.Errorf("warren: consumer %s on %s: cancelled by the broker", c.opts.Name, e.Queue)
	} else {
		e.Kind = EventConsumerChannelClosed
		e.Err = fmt.Errorf("warren: consumer %s on %s: %w", c.opts.Name, e.Queue, err)
	}
	c.s.log.Warn("warren: consumer interrupted", "consumer", c.opts.Name, "queue", e.Queue, "err", e.Err, "retry_in", delay)
	c.s.emit(e)
	if serr != nil { // cannot happen: the consumer's policy has no limits
		c.s.log.Error("warren: consumer resubscribes at the cap", "consumer", c.opts.Name, "err", serr)
		return c.s.opts.Reconnect.Max
	}
	return delay
}

// shutdown is Close's work on the run goroutine.
func (c *Consumer) shutdown(sub *subscription, req closeRequest) error {
	var errs []error
	if sub != nil && !sub.ch.IsClosed() {
		// noWait: the broker stops sending at once and no answer is awaited
		// (a reply could be stuck behind a blocked connection). What it sent
		// meanwhile stays unacknowledged and is requeued with the channel.
		if err := sub.ch.Cancel(c.opts.Name, true); err != nil && !isClosedErr(err) {
			errs = append(errs, fmt.Errorf("cancel: %w", err))
		}
	}
	if err := c.workers.Wait(req.ctx); err != nil {
		c.handlerCancel()
		errs = append(errs, fmt.Errorf("handlers still running: %w", req.ctx.Err()))
	}
	c.handlerCancel()
	if sub != nil {
		sub.cancel()
		if !req.supervisorClosing {
			if err := closeChannel(req.ctx, sub.ch, c.s.opts.CloseTimeout); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.pub != nil && !req.supervisorClosing {
		// After the handlers: they may be publishing retry copies. Under
		// Supervisor.Close the supervisor closes the publisher itself, as
		// one of its hooks.
		if err := c.pub.Close(req.ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("warren: close consumer %s: %w", c.opts.Name, err)
	}
	return nil
}

// consumeUpWait bounds how long the consumer's ready hook waits for its
// subscription on a reconnect. Hooks run one after the other on the supervisor's
// goroutine, consumers before publishers: a consume that waits for the
// broker (a quorum queue electing a leader answers basic.consume only
// once it has one) would otherwise hold up every publisher of the
// supervisor, and its readiness. Past the bound the attempt goes on in the
// background, as a resubscription does.
const consumeUpWait = 100 * time.Millisecond

// upAttemptLocked makes Up's subscription attempt on conn, waiting for it at
// most consumeUpWait. It takes over c.attempting, which the caller holds:
// the attempt releases it when it ends. It returns an error only for an
// attempt that failed within the wait because conn died.
//
// The consumer's first subscription (Consume's, or the first connection's)
// is waited for in full, bounded by ctx: Consume returns subscribed, as it
// always has.
func (c *Consumer) upAttemptLocked(ctx context.Context, conn *amqp.Connection) error {
	var bound <-chan time.Time
	if c.announce { // subscribed before: this is a reconnect
		t := time.NewTimer(consumeUpWait)
		defer t.Stop()
		bound = t.C
	}
	done := make(chan error, 1)
	c.s.work.Go(func() {
		defer func() { <-c.attempting }()
		done <- c.attemptLocked(conn)
	})
	var err error
	select {
	case err = <-done:
	case <-bound:
		return nil // a failure arms a retry, or the next Up takes over
	case <-ctx.Done():
		return nil
	}
	if err != nil && conn.IsClosed() {
		return fmt.Errorf("warren: consumer %s: connection closed while subscribing: %w", c.opts.Name, err)
	}
	return nil
}
