package conn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// HandlerMiddleware wraps the handling of every delivery of a consumer:
// the handler's call and warren's settlement of the delivery by what it
// returned. It gets next and returns the function to call instead; the
// function sees the delivery and the handler's context (and may pass a
// derived one to next, which the handler gets), and the HandleResult next
// returns: what the handler returned and how the delivery was settled.
//
// next must be called at most once, and before the middleware returns (not
// on a goroutine of its own): a second call, or a call after the
// middleware returned, does not run the handler and returns an error
// wrapping ErrDeliverySettled. A middleware that does
// not call next decides the delivery's outcome by the Err of the
// HandleResult it returns, as a handler would by its error (nil
// acknowledges it, Reject(err) rejects it, and so on), unless the delivery
// was settled already. A middleware that panics is handled like a panicking
// handler: counted, reported as an EventHandlerPanicked, and the delivery
// settled as ConsumerOptions.OnError says. Middleware runs on the handler's
// goroutine and under the stall watchdog, with the handler.
type HandlerMiddleware func(next HandleFunc) HandleFunc

// HandleFunc handles one delivery and returns what became of it; see
// HandlerMiddleware.
type HandleFunc func(ctx context.Context, info DeliveryInfo, d amqp.Delivery) HandleResult

// DeliveryInfo says which consumer handles a delivery.
type DeliveryInfo struct {
	// Consumer is the consumer's name (its consumer tag).
	Consumer string
	// Queue is the queue consumed, its server-chosen name included.
	Queue string

	st *mwDelivery
}

// Settlement is what was sent to the broker for a delivery.
type Settlement int

const (
	// SettledNone: nothing was sent (yet): a handler that settles its
	// delivery later, on another goroutine.
	SettledNone Settlement = iota
	// SettledAck: basic.ack (for OutcomeRetry, after the copy was confirmed).
	SettledAck
	// SettledRequeue: basic.nack with requeue.
	SettledRequeue
	// SettledReject: basic.nack or basic.reject without requeue.
	SettledReject
	// SettledAutoAck: the consumer is AutoAck; the broker settled the
	// delivery when it sent it.
	SettledAutoAck
)

// String returns the settlement's name in lower case, such as "requeue",
// as used in metric labels.
func (s Settlement) String() string {
	switch s {
	case SettledNone:
		return "none"
	case SettledAck:
		return "ack"
	case SettledRequeue:
		return "requeue"
	case SettledReject:
		return "reject"
	case SettledAutoAck:
		return "autoack"
	}
	return "Settlement(" + strconv.Itoa(int(s)) + ")"
}

// HandleResult is what became of a delivery.
type HandleResult struct {
	// Err is what the handler returned; a panic is an error wrapping
	// ErrHookPanicked.
	Err error
	// Panicked tells whether the handler panicked.
	Panicked bool
	// Outcome is the outcome chosen for the delivery: by the handler's
	// error, by ConsumerOptions.OnError for an error that chose none, or by
	// the handler's own settlement.
	Outcome Outcome
	// Settlement is what was sent to the broker.
	Settlement Settlement
	// ByHandler tells whether the handler settled the delivery itself.
	ByHandler bool
}

// mwDelivery is the state of one delivery handled through middleware, one
// allocation per delivery.
type mwDelivery struct {
	c    *Consumer
	sub  *subscription
	rec  settleRecorder
	once settleOnce
	// next is nextIdle until the chain calls next (nextCalled) or returns
	// without having called it (nextClosed): a next called twice, or
	// after the chain returned, does not run the handler.
	next atomic.Int32
}

const (
	nextIdle int32 = iota
	nextCalled
	nextClosed
)

// composeMiddleware returns the chain of mws around handleInner, the first
// outermost, or nil without middleware.
func composeMiddleware(mws []HandlerMiddleware) HandleFunc {
	if len(mws) == 0 {
		return nil
	}
	h := HandleFunc(handleInner)
	for i := len(mws) - 1; i >= 0; i-- {
		if h = mws[i](h); h == nil {
			return nil // validate reports it
		}
	}
	return h
}

func isNilMiddleware(mw HandlerMiddleware) bool { return mw == nil }

// handleMiddleware is handle with middleware: it runs the chain under the
// watchdog, and settles the delivery by the chain's result if nothing in it
// did (a middleware that did not call next, or panicked).
func (c *Consumer) handleMiddleware(sub *subscription, lane *heartbeat.Lane, d amqp.Delivery) {
	st := &mwDelivery{c: c, sub: sub}
	st.rec.inner = d.Acknowledger
	st.once = settleOnce{inner: &st.rec, autoAck: c.opts.AutoAck}
	d.Acknowledger = &st.once
	info := DeliveryInfo{Consumer: c.opts.Name, Queue: sub.queue, st: st}
	done := lane.Watch(sub.stallName, c.s.opts.StallThreshold)
	res := c.runChain(sub.ctx, info, d)
	st.next.CompareAndSwap(nextIdle, nextClosed)
	done()
	if c.opts.AutoAck || !st.once.claim() {
		return
	}
	c.settle(sub, &st.rec, d, res.Err)
}

// runChain calls the middleware chain and turns its panic into an error.
func (c *Consumer) runChain(ctx context.Context, info DeliveryInfo, d amqp.Delivery) (res HandleResult) {
	defer func() {
		if r := recover(); r != nil {
			res = HandleResult{Err: c.panicked(r, info.Queue), Panicked: true}
		}
	}()
	return c.opts.handle(ctx, info, d)
}

// handleInner is the innermost HandleFunc: the handler's call and warren's
// settlement.
func handleInner(ctx context.Context, info DeliveryInfo, d amqp.Delivery) HandleResult {
	st := info.st
	if st == nil || !st.next.CompareAndSwap(nextIdle, nextCalled) {
		return HandleResult{Err: fmt.Errorf("%w: a HandlerMiddleware called next twice, after it returned, "+
			"or with a DeliveryInfo of its own", ErrDeliverySettled)}
	}
	c, sub := st.c, st.sub
	d.Acknowledger = &st.once
	panicked, err := c.callBare(ctx, sub.queue, d)
	if err != nil && !panicked {
		c.s.ctr.handlerErrors.Add(1)
	}
	res := HandleResult{Err: err, Panicked: panicked}
	if c.opts.AutoAck {
		res.Outcome, res.Settlement = OutcomeAck, SettledAutoAck
		return res
	}
	if st.once.claim() {
		c.settle(sub, &st.rec, d, err)
	} else {
		res.ByHandler = true
	}
	res.Settlement = Settlement(st.rec.action.Load())
	res.Outcome = c.outcomeOf(err, res.Settlement, res.ByHandler)
	return res
}

// callBare runs the handler and turns a panic into an error; the watchdog
// is armed around the whole chain by handleMiddleware.
func (c *Consumer) callBare(ctx context.Context, queue string, d amqp.Delivery) (panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked, err = true, c.panicked(r, queue)
		}
	}()
	return false, c.h(ctx, d)
}

// outcomeOf is the outcome chosen for a delivery whose handler returned
// err and which was settled with s.
func (c *Consumer) outcomeOf(err error, s Settlement, byHandler bool) Outcome {
	byAction := func() Outcome {
		switch s {
		case SettledRequeue:
			return OutcomeRequeue
		case SettledReject:
			return OutcomeReject
		}
		return OutcomeAck
	}
	var oe *OutcomeError
	switch {
	case byHandler:
		return byAction()
	case err == nil:
		return OutcomeAck
	case errors.As(err, &oe):
		return oe.Outcome
	}
	switch c.opts.OnError {
	case RetryBackoff:
		return OutcomeRetry
	case RequeueAlways:
		return OutcomeRequeue
	}
	return byAction()
}

// settleRecorder passes settlements on and records the last one sent.
type settleRecorder struct {
	inner  amqp.Acknowledger
	action atomic.Int32
}

// Ack records and sends an ack.
func (r *settleRecorder) Ack(tag uint64, multiple bool) error {
	r.action.Store(int32(SettledAck))
	return r.inner.Ack(tag, multiple)
}

// Nack records and sends a nack.
func (r *settleRecorder) Nack(tag uint64, multiple, requeue bool) error {
	r.action.Store(int32(settledRefuse(requeue)))
	return r.inner.Nack(tag, multiple, requeue)
}

// Reject records and sends a reject.
func (r *settleRecorder) Reject(tag uint64, requeue bool) error {
	r.action.Store(int32(settledRefuse(requeue)))
	return r.inner.Reject(tag, requeue)
}

func settledRefuse(requeue bool) Settlement {
	if requeue {
		return SettledRequeue
	}
	return SettledReject
}
