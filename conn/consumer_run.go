package conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// run is the consumer's goroutine: the only owner of its subscription and of
// its backoff schedule. It never calls back into the Supervisor's blocking
// methods, so the supervisor's goroutine may wait for it in Up.
func (c *Consumer) run(sched *reconnect.Schedule) {
	defer close(c.done)
	var (
		conn  *amqp.Connection // the connection to consume on, nil after a loss
		sub   *subscription    // the live subscription, or nil
		retry *time.Timer      // armed while a resubscription waits for its backoff
		// announce: the next subscription is a comeback, after an earlier
		// subscription or a reported failure, and gets an event.
		announce bool
	)
	disarm := func() {
		if retry != nil {
			retry.Stop()
			retry = nil
		}
	}
	defer disarm()
	// attempt subscribes on conn; after a refusal on a live connection it
	// reports the failure and arms the retry timer.
	attempt := func() {
		s, err := c.subscribe(conn)
		if err == nil {
			sched.Connected()
			if announce {
				c.s.emit(Event{Kind: EventConsumerResubscribed, Consumer: c.opts.Name, Queue: s.queue})
			}
			announce = true
			sub = s
			return
		}
		if conn.IsClosed() {
			return // the supervisor reports the loss and Up brings the next connection
		}
		retry = c.backoff(sched, err, nil)
		announce = true
	}

	for {
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
		case req := <-c.ups:
			disarm()
			if sub != nil && sub.conn != req.conn {
				c.drop(sub, sched)
				sub = nil
			}
			conn = req.conn
			if sub == nil {
				attempt()
			}
			var err error
			if sub == nil && conn.IsClosed() {
				err = fmt.Errorf("warren: consumer %s: connection closed while subscribing: %w", c.opts.Name, amqp.ErrClosed)
			}
			req.reply <- err

		case <-c.downs:
			if conn != nil && conn.IsClosed() {
				disarm()
				conn = nil
				if sub != nil {
					c.drop(sub, sched)
					sub = nil
				}
			}

		case amqpErr := <-closed:
			lost := sub
			sub = nil
			c.drop(lost, sched)
			if lost.conn.IsClosed() {
				continue // connection loss: Up resubscribes on the next one
			}
			err := errors.New("channel closed")
			if amqpErr != nil {
				err = fmt.Errorf("channel closed by the broker: %w", amqpErr)
			}
			retry = c.backoff(sched, err, lost)

		case <-cancelled:
			lost := sub
			sub = nil
			c.drop(lost, sched)
			retry = c.backoff(sched, nil, lost)

		case <-retryC:
			retry = nil
			if conn != nil && !conn.IsClosed() && sub == nil {
				attempt()
			}

		case req := <-c.closes:
			disarm()
			c.closeErr = c.shutdown(sub, req)
			return
		}
	}
}

// backoff reports a subscription that failed (err) or was cancelled by the
// broker (err nil), and arms the timer for the next attempt. lost is the
// subscription that ended, if any; its stall report goes with the event, as
// the likely reason a delivery was held past consumer_timeout.
func (c *Consumer) backoff(sched *reconnect.Schedule, err error, lost *subscription) *time.Timer {
	delay, serr := sched.Next()
	queue := c.q.describe()
	e := Event{Consumer: c.opts.Name, Queue: queue, Attempt: sched.Attempt(), Delay: delay}
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
		c.s.log.Error("warren: consumer stops resubscribing until the next connection", "consumer", c.opts.Name, "err", serr)
		return nil
	}
	return time.NewTimer(delay)
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
	if err := c.waitHandlers(req.ctx); err != nil {
		errs = append(errs, err)
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("warren: close consumer %s: %w", c.opts.Name, err)
	}
	return nil
}

// waitHandlers waits until every handler goroutine has exited, bounded by
// ctx. When ctx ends first it cancels the handlers' context and returns;
// the helper goroutine then lives exactly as long as the stuck handlers.
func (c *Consumer) waitHandlers(ctx context.Context) error {
	idle := make(chan struct{})
	go func() {
		c.workers.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		c.handlerCancel()
		return fmt.Errorf("handlers still running: %w", ctx.Err())
	}
}
