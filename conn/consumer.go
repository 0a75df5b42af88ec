package conn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// Handler handles one delivery and chooses its Outcome by what it returns:
// nil acknowledges it; Requeue(err), Reject(err) and RetryAfter(d, err)
// choose those outcomes; any other error is handled as
// ConsumerOptions.OnError says (by default retried later, then moved to a
// dead queue); a panic is recovered, counted, reported as an
// EventHandlerPanicked and handled like an error. A handler need not settle
// d itself; if it does (d.Ack, d.Nack, d.Reject: "I settled it myself"), its
// settlement wins, applies to d alone (multiple is ignored), and warren does
// not settle d again, whatever the handler returns; a second settlement
// returns ErrDeliverySettled. ctx is cancelled once the delivery can no
// longer be acknowledged (its channel or connection is gone, and the broker
// will redeliver it) and when the context of Consumer.Close ends. The handler runs under the stall watchdog as
// "consumer NAME on QUEUE".
type Handler func(ctx context.Context, d amqp.Delivery) error

// consumerSeq numbers consumers without a Name, process-wide like
// amqp091-go's own consumer tags, so default names never collide.
var consumerSeq atomic.Uint64

// handlerOf is the context key under which a handler's ctx carries its
// Consumer, so that Close called from inside a handler does not wait for
// that handler.
type handlerOf struct{}

// handlerConsumer returns the Consumer whose handler was given ctx (or a
// context derived from it), or nil.
func handlerConsumer(ctx context.Context) *Consumer {
	c, _ := ctx.Value(handlerOf{}).(*Consumer)
	return c
}

// Consumer consumes one queue with a Handler and keeps consuming across
// reconnects and channel failures until Close. Create it with
// Supervisor.Consume.
type Consumer struct {
	s    *Supervisor
	q    *Queue
	h    Handler
	opts ConsumerOptions

	// slots holds one token per running handler call, across every
	// subscription: the handlers of a dropped subscription that are still
	// running keep theirs, so a new subscription's handlers wait for them
	// and never more than Concurrency calls run at once.
	slots chan struct{}
	// wake tells run to look at the subscription state again (a new
	// subscription, a retry to arm, a lost connection); capacity 1.
	wake chan struct{}
	// closes carries the one close request.
	closes chan closeRequest
	// stop is closed when Close starts: workers take no new delivery.
	stop chan struct{}
	// handlerCtx is the parent of every subscription's handler context; it
	// ends when Close's context does, or when Close is done.
	handlerCtx    context.Context
	handlerCancel context.CancelFunc
	workers       *workGroup // handler goroutines of every subscription

	// pub publishes retry copies (see retryLater); nil unless retries are
	// enabled.
	pub *Publisher
	// failures counts failed deliveries by MessageId, for RequeueOnce and
	// for retries without retry queues.
	failures *idWindow
	// dedupe remembers acknowledged MessageIds; nil unless Dedupe is set.
	dedupe *idWindow

	closeOnce sync.Once
	closeErr  error         // written by run before done closes
	done      chan struct{} // run has exited

	// attempting is a lock (capacity 1) that serializes subscription
	// attempts (Up on the supervisor's goroutine, retries on run) and guards
	// sched and announce. A channel rather than a mutex, so that Close can
	// give up waiting for an attempt stuck on the broker when its ctx ends.
	attempting chan struct{}
	sched      *reconnect.Schedule
	// announce: the next subscription is a comeback, after an earlier
	// subscription or a reported failure, and gets an event.
	announce bool

	mu         sync.Mutex
	conn       *amqp.Connection // the connection to consume on; nil after Down
	sub        *subscription    // the live subscription, or nil
	retryDelay time.Duration    // a resubscription run must arm; 0 if none
	closing    bool
	// closedByUser: the first Close was the user's, whose caller got the
	// result; the supervisor's later Close does not report it again.
	closedByUser bool
	remove       func() // unregisters the hook; nil until Consume has it
}

type closeRequest struct {
	ctx     context.Context
	release context.CancelFunc // releases ctx's timer once the shutdown is done
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
// own; a missing queue never fails the connection, and a queue that a
// Topology declared is declared again (EventQueueRedeclared). Such events
// carry the consumer's name and queue, and Attempt and Delay of the next
// subscription attempt. Consume fails only for invalid arguments
// (ErrInvalidConsumerOptions), a closing supervisor (ErrClosed), or ctx
// ending before the first attempt on the current connection started; a
// connection that dies under that attempt only defers it to the next one.
func (s *Supervisor) Consume(ctx context.Context, q *Queue, h Handler, opts ConsumerOptions) (*Consumer, error) {
	var errs []error
	if q == nil {
		errs = append(errs, fmt.Errorf("%w: queue is nil", ErrInvalidConsumerOptions))
	} else if q.emptyReference() {
		errs = append(errs, fmt.Errorf("%w: queue is NamedQueue(\"\"): a queue declared elsewhere needs its name "+
			"(a server-named queue is a *Queue declared by a Topology)", ErrInvalidConsumerOptions))
	}
	if h == nil {
		errs = append(errs, fmt.Errorf("%w: handler is nil", ErrInvalidConsumerOptions))
	}
	opts = opts.withDefaults(consumerSeq.Add(1))
	if err := errors.Join(append(errs, opts.validate())...); err != nil {
		return nil, err
	}
	retries := retriesEnabled(q, opts) // before the defaults fill Retry.Delays in
	opts.Retry = opts.Retry.forQueue(q)
	// A consumer never gives up while its connection lives: the policy's
	// limits are about dialing, and a new connection restarts it anyway.
	policy := s.opts.Reconnect
	policy.MaxAttempts, policy.MaxElapsed = 0, 0
	sched, err := reconnect.NewSchedule(policy, nil)
	if err != nil {
		return nil, fmt.Errorf("warren: consume: %w", err)
	}
	c := &Consumer{
		s:          s,
		q:          q,
		h:          h,
		opts:       opts,
		slots:      make(chan struct{}, opts.Concurrency),
		wake:       make(chan struct{}, 1),
		closes:     make(chan closeRequest, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		workers:    newWorkGroup(),
		sched:      sched,
		attempting: make(chan struct{}, 1),

		failures: newIDWindow(failureWindowSize, failureWindowTTL),
	}
	if opts.Dedupe != nil {
		c.dedupe = newIDWindow(opts.Dedupe.Size, opts.Dedupe.Window)
	}
	if retries {
		// A publisher of its own: its confirms and returns are what make a
		// retry copy safe to ack the original for. ConfirmLostFail: a copy
		// whose connection died is failed, and its original, redelivered
		// by the broker anyway, is not doubled by a republished copy.
		c.pub, err = s.NewPublisher(ctx, PublisherOptions{
			Name:          "consumer " + opts.Name + " retries",
			Mandatory:     true,
			OnConfirmLost: ConfirmLostFail,
		})
		if err != nil {
			return nil, fmt.Errorf("warren: consume %s: retry publisher: %w", q.describe(), err)
		}
	}
	c.handlerCtx, c.handlerCancel = context.WithCancel(context.WithValue(context.Background(), handlerOf{}, c))
	s.work.Go(c.run)

	remove, err := s.AddHook(ctx, Hook{
		Name:  "consumer " + opts.Name,
		Phase: PhaseConsumers,
		Up:    c.up,
		Down:  c.down,
		Close: func(ctx context.Context) error { return c.close(ctx, true) },
	})
	if err != nil {
		// Up did not succeed, so nothing is subscribed: this close has
		// nothing to wait for.
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
// The first call starts the shutdown and its ctx bounds it (the
// supervisor's CloseTimeout when ctx has no deadline): when it ends, the
// handlers' ctx is cancelled, the channel is closed anyway, and Close
// returns an error wrapping ctx's. Every call, concurrent or later, waits
// for the same result, bounded by its own ctx. Supervisor.Close closes every
// consumer the same way before it closes the connection.
//
// A handler may call Close with its own ctx (or one derived from it): Close
// then starts the shutdown, bounded by CloseTimeout, and returns nil at once;
// the shutdown completes after the handler returns. Called from a handler
// with an unrelated ctx, Close waits for that handler too, until ctx ends.
func (c *Consumer) Close(ctx context.Context) error {
	return c.close(ctx, false)
}

func (c *Consumer) close(ctx context.Context, supervisorClosing bool) error {
	fromHandler := !supervisorClosing && handlerConsumer(ctx) == c
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.closing = true
		c.closedByUser = !supervisorClosing
		c.mu.Unlock()
		// The hook stays registered until the shutdown is done (run
		// removes it), so that a Supervisor.Close meanwhile waits for this
		// shutdown before it closes the connection under the handlers.
		close(c.stop)
		bound, cancel := boundedContext(ctx, c.s.opts.CloseTimeout, fromHandler)
		c.closes <- closeRequest{ctx: bound, release: cancel, supervisorClosing: supervisorClosing}
	})
	if fromHandler {
		// The shutdown waits for this handler to return: waiting here would
		// wait for ourselves.
		return nil
	}
	select {
	case <-c.done:
		c.mu.Lock()
		reported := !first && supervisorClosing && c.closedByUser
		c.mu.Unlock()
		if reported {
			return nil // the user's Close was told already
		}
		return c.closeErr
	case <-ctx.Done():
		return fmt.Errorf("warren: close consumer %s: %w", c.opts.Name, ctx.Err())
	}
}

// unregister removes the consumer's hook once its shutdown is done.
func (c *Consumer) unregister() {
	c.mu.Lock()
	remove := c.remove
	c.remove = nil
	c.mu.Unlock()
	if remove != nil {
		remove()
	}
}

// boundedContext returns the context that bounds a shutdown started with
// ctx: ctx itself when it has a deadline, else ctx bounded by timeout. fresh
// drops ctx (a handler's context, which ends with its subscription) and
// bounds by timeout alone.
func boundedContext(ctx context.Context, timeout time.Duration, fresh bool) (context.Context, context.CancelFunc) {
	if fresh {
		ctx = context.Background()
	} else if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// up is the hook's Up, on the supervisor's goroutine: it makes the first
// subscription attempt on the new connection. Only a dead connection fails
// it; a refused subscription is retried in the background.
func (c *Consumer) up(ctx context.Context, conn *amqp.Connection) error {
	// Not behind a Close that holds the attempt lock while its handlers
	// finish: the supervisor's goroutine must not wait for that.
	select {
	case c.attempting <- struct{}{}:
	case <-c.stop:
		return nil // closing: nothing to restore
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.attempting
		return nil // closing: nothing to restore
	}
	c.conn = conn
	c.mu.Unlock()
	return c.upAttemptLocked(ctx, conn) // releases c.attempting
}

// down is the hook's Down: the connection is gone, and with it the
// subscription's channel. It must not block: it only forgets the
// subscription, ends its handlers' context and wakes run.
func (c *Consumer) down(error) {
	c.mu.Lock()
	sub := c.sub
	c.sub, c.conn, c.retryDelay = nil, nil, 0
	c.mu.Unlock()
	if sub != nil {
		sub.cancel()
	}
	c.poke()
}

// poke wakes run without blocking.
func (c *Consumer) poke() {
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending; run rereads everything
	}
}
