package conn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// Handler handles one delivery. Returning nil acknowledges it; an error
// nacks it as ConsumerOptions.OnError says; a panic is recovered, counted,
// reported as an EventHandlerPanicked and nacked the same way. ctx is
// cancelled once the delivery can no longer be acknowledged (its channel or
// connection is gone, and the broker will redeliver it) and when the context
// of Consumer.Close ends. The handler runs under the stall watchdog as
// "consumer NAME on QUEUE".
type Handler func(ctx context.Context, d amqp.Delivery) error

// consumerSeq numbers consumers without a Name, process-wide like
// amqp091-go's own consumer tags, so default names never collide.
var consumerSeq atomic.Uint64

// Consumer consumes one queue with a Handler and keeps consuming across
// reconnects and channel failures until Close. Create it with
// Supervisor.Consume.
type Consumer struct {
	s    *Supervisor
	q    *Queue
	h    Handler
	opts ConsumerOptions

	// ups carries hook Up calls to run, which answers on the request's
	// reply channel; downs pokes run after a connection loss (capacity 1:
	// Down must not block); closes carries the one close request.
	ups    chan upRequest
	downs  chan struct{}
	closes chan closeRequest

	// stop is closed when Close starts: workers take no new delivery.
	stop chan struct{}
	// handlerCtx is the parent of every subscription's handler context; it
	// ends when Close's context does, or when Close is done.
	handlerCtx    context.Context
	handlerCancel context.CancelFunc
	workers       sync.WaitGroup // handler goroutines of every subscription

	// workerIDs holds the goroutine ids of the handler goroutines, so that
	// Close called from a handler does not wait for that handler.
	workerIDs sync.Map // int64 → struct{}

	closeOnce sync.Once
	closeErr  error         // written by run before done closes
	done      chan struct{} // run has exited

	mu      sync.Mutex
	closing bool
	remove  func() // unregisters the hook; nil until Consume has it
}

type upRequest struct {
	conn  *amqp.Connection
	reply chan error // capacity 1
}

type closeRequest struct {
	ctx context.Context
	// supervisorClosing: the connection is closed right after, which ends
	// the channel and requeues its unacknowledged messages anyway.
	supervisorClosing bool
}

// Consume starts consuming q with h: on the current connection if there is
// one (before Consume returns), and again on every new connection, after the
// topology hooks, so a consumer of a server-named queue consumes the name
// declared on that connection. A consumer whose channel fails while the
// connection lives (its queue was deleted and the broker cancelled it, a
// delivery was held past the broker's consumer_timeout, the queue does not
// exist yet) reports it as an event and resubscribes with backoff on its
// own; a missing queue never fails the connection. Such events carry the
// consumer's name and queue, and Attempt and Delay of the next subscription
// attempt. Consume fails only for invalid arguments (ErrInvalidConsumerOptions),
// a closing supervisor (ErrClosed), or ctx ending before the first attempt on
// the current connection finished.
func (s *Supervisor) Consume(ctx context.Context, q *Queue, h Handler, opts ConsumerOptions) (*Consumer, error) {
	var errs []error
	if q == nil {
		errs = append(errs, fmt.Errorf("%w: queue is nil", ErrInvalidConsumerOptions))
	}
	if h == nil {
		errs = append(errs, fmt.Errorf("%w: handler is nil", ErrInvalidConsumerOptions))
	}
	opts = opts.withDefaults(consumerSeq.Add(1))
	if err := errors.Join(append(errs, opts.validate())...); err != nil {
		return nil, err
	}
	// A consumer never gives up while its connection lives: the policy's
	// limits are about dialing, and a new connection restarts it anyway.
	policy := s.opts.Reconnect
	policy.MaxAttempts, policy.MaxElapsed = 0, 0
	sched, err := reconnect.NewSchedule(policy, nil)
	if err != nil {
		return nil, fmt.Errorf("warren: consume: %w", err)
	}
	c := &Consumer{
		s:      s,
		q:      q,
		h:      h,
		opts:   opts,
		ups:    make(chan upRequest),
		downs:  make(chan struct{}, 1),
		closes: make(chan closeRequest, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.handlerCtx, c.handlerCancel = context.WithCancel(context.Background())
	go c.run(sched)

	remove, err := s.AddHook(ctx, Hook{
		Name:  "consumer " + opts.Name,
		Phase: PhaseConsumers,
		Up:    c.up,
		Down:  c.down,
		Close: func(ctx context.Context) error { return c.close(ctx, true) },
	})
	if err != nil {
		// Nothing is subscribed (Up failed only on a dead connection), so
		// this close has nothing to wait for.
		cctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
		defer cancel()
		_ = c.close(cctx, false)
		return nil, fmt.Errorf("warren: consume %s: %w", q.describe(), err)
	}
	c.mu.Lock()
	if c.closing { // the supervisor closed it already
		c.mu.Unlock()
		remove()
		return c, nil
	}
	c.remove = remove
	c.mu.Unlock()
	return c, nil
}

// Name returns the consumer's name, which is also its consumer tag.
func (c *Consumer) Name() string { return c.opts.Name }

// Close stops the consumer: it stops resubscribing, cancels the
// subscription (basic.cancel) so the broker sends no more, lets the handlers
// that are running finish within ctx (they can still acknowledge), and
// closes the channel. Deliveries not handled by then stay unacknowledged:
// the broker requeues them and delivers them again, to this or another
// consumer, with Redelivered set. No goroutine of the consumer outlives
// Close, except a handler that ignores its ctx.
//
// The first call starts the shutdown and its ctx bounds it: when ctx ends,
// the handlers' ctx is cancelled, the channel is closed anyway, and Close
// returns an error wrapping ctx's. Every call, concurrent or later, waits for
// the same result, bounded by its own ctx. Supervisor.Close closes every
// consumer the same way before it closes the connection.
//
// A handler may call Close: it then starts the shutdown and returns nil at
// once, and the shutdown completes after the handler returns. (A handler
// that calls Supervisor.Close waits for itself until that ctx ends: call it
// on a goroutine of its own.)
func (c *Consumer) Close(ctx context.Context) error {
	return c.close(ctx, false)
}

func (c *Consumer) close(ctx context.Context, supervisorClosing bool) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		remove := c.remove
		c.mu.Unlock()
		if remove != nil {
			remove()
		}
		close(c.stop)
		c.closes <- closeRequest{ctx: ctx, supervisorClosing: supervisorClosing}
	})
	if !supervisorClosing {
		if _, ok := c.workerIDs.Load(currentGoroutineID()); ok {
			// Called by a handler: the shutdown waits for that handler to
			// return, so waiting here would wait for ourselves.
			return nil
		}
	}
	select {
	case <-c.done:
		return c.closeErr
	case <-ctx.Done():
		return fmt.Errorf("warren: close consumer %s: %w", c.opts.Name, ctx.Err())
	}
}

// up is the hook's Up: it hands the new connection to run and waits for
// the first subscription attempt on it. Only a dead connection fails it; a
// refused subscription is retried in the background.
func (c *Consumer) up(ctx context.Context, conn *amqp.Connection) error {
	req := upRequest{conn: conn, reply: make(chan error, 1)}
	select {
	case c.ups <- req:
	case <-c.stop:
		return nil // closing: nothing to restore
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// down is the hook's Down; it must not block.
func (c *Consumer) down(error) {
	select {
	case c.downs <- struct{}{}:
	default: // a poke is pending already
	}
}
