package conn

import (
	"context"
	"fmt"
	"runtime/debug"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// work is one handler goroutine of sub. It exits when Close starts (after
// its current call) or when sub's deliveries end with its channel.
func (c *Consumer) work(sub *subscription) {
	lane := sub.watchdog.Lane()
	for {
		select {
		case <-c.stop:
			return
		case d, ok := <-sub.deliveries:
			if !ok {
				return
			}
			if !c.opts.AutoAck && c.stopping() {
				// Close started while this one was on its way: leave it
				// unacknowledged for the broker to redeliver.
				return
			}
			if !c.acquire() {
				return
			}
			if !c.opts.AutoAck && sub.ctx.Err() != nil {
				// Its channel is gone: the broker redelivers it, and an ack
				// could not count. (AutoAck deliveries are never redelivered.)
				c.release()
				continue
			}
			c.handle(sub, lane, d)
			c.release()
		}
	}
}

// acquire takes a handler slot: it waits while Concurrency handler calls
// run, counting those of earlier subscriptions still finishing. It reports
// false when Close started meanwhile; the delivery then stays
// unacknowledged for the broker to redeliver. A subscription that ends while
// it waits still gets its slot, so that an AutoAck delivery, which the
// broker will not send again, is handled.
func (c *Consumer) acquire() bool {
	select {
	case c.slots <- struct{}{}:
		return true
	case <-c.stop:
		return false
	}
}

// release returns a handler slot.
func (c *Consumer) release() { <-c.slots }

func (c *Consumer) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// handle runs the handler on d and settles d by the outcome, unless the
// handler settled it itself (see settleOnce) or Dedupe recognises d as a
// duplicate of a message handled already.
func (c *Consumer) handle(sub *subscription, lane *heartbeat.Lane, d amqp.Delivery) {
	c.s.ctr.delivered.Add(1)
	if !c.opts.AutoAck && c.dedupe != nil && d.MessageId != "" && c.dedupe.count(d.MessageId) > 0 {
		_ = d.Ack(false)
		return
	}
	if c.opts.handle != nil {
		c.handleMiddleware(sub, lane, d)
		return
	}
	once := &settleOnce{inner: d.Acknowledger, autoAck: c.opts.AutoAck}
	d.Acknowledger = once
	panicked, err := c.call(sub.ctx, lane, sub.stallName, sub.queue, d)
	if err != nil && !panicked {
		c.s.ctr.handlerErrors.Add(1)
	}
	if c.opts.AutoAck || !once.claim() {
		return
	}
	c.settle(sub, once.inner, d, err)
}

// call runs the handler under the stall watchdog and turns a panic into an
// error (panicked true), reported as an event.
func (c *Consumer) call(ctx context.Context, lane *heartbeat.Lane, stallName, queue string, d amqp.Delivery) (panicked bool, err error) {
	done := lane.Watch(stallName, c.s.opts.StallThreshold)
	defer done()
	defer func() {
		if r := recover(); r != nil {
			panicked, err = true, c.panicked(r, queue)
		}
	}()
	return false, c.h(ctx, d)
}

// panicked counts, logs (with the stack, which only exists here) and
// reports a handler panic, and returns it as an error.
func (c *Consumer) panicked(r any, queue string) error {
	c.s.ctr.handlerPanics.Add(1)
	err := fmt.Errorf("%w: consumer %s on %s: %v", ErrHookPanicked, c.opts.Name, queue, r)
	c.s.log.Error("warren: consumer handler panicked", "consumer", c.opts.Name, "queue", queue,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	c.s.emit(Event{Kind: EventHandlerPanicked, Err: err, Consumer: c.opts.Name, Queue: queue})
	return err
}

// reportStall is the watchdog report of sub's handlers: like the
// supervisor's, with the consumer and queue named in the event.
func (c *Consumer) reportStall(sub *subscription, st heartbeat.Stall) {
	if st.Finished {
		c.s.log.Warn("warren: stalled consumer handler returned", "consumer", c.opts.Name, "queue", sub.queue,
			"took", st.Elapsed)
	} else {
		c.s.ctr.stalls.Add(1)
		sub.stall.Store(&st)
		c.s.log.Warn("warren: consumer handler stalled", "consumer", c.opts.Name, "queue", sub.queue,
			"running_for", st.Elapsed, "stack", string(st.Stack))
	}
	c.s.emit(Event{Kind: EventStall, Stall: &st, Consumer: c.opts.Name, Queue: sub.queue})
}
