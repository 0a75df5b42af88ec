package conn

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// PublishInterceptor observes, and may change, every message a Publisher
// accepts. It runs on the caller's goroutine in PublishAsync (and Publish),
// after the publisher filled in an empty MessageId and before the message is
// validated, so headers it adds are checked and sized like the caller's.
//
// It may change pub.Msg (Headers is a copy of the caller's table, which
// stays untouched, so it may be modified in place), pub.Exchange and
// pub.RoutingKey, and return a context
// derived from ctx, which the rest of the publish uses (it still bounds the
// message's life, republications included); a nil context means ctx. It
// returns the function that sees the message settle, or nil.
//
// A message republished after a lost connection is not intercepted again:
// it keeps the headers (and so the trace context) of its first write, and
// settles once.
type PublishInterceptor func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled)

// PublishSettled sees a message's outcome. It is called exactly once per
// message the interceptor saw, in the order the messages settled, on a
// goroutine of the publisher's (or, for a message refused before it was
// accepted, on the caller's), never under a lock of the publisher's, so it
// may call the Publisher. It should be quick: while it runs, other
// outcomes wait, and once MaxInFlight of them wait, publishes wait for
// room (bounded by their context). A panic is recovered and logged.
type PublishSettled func(PublishResult)

// OutgoingPublish is a message on its way to the broker, as a
// PublishInterceptor sees it.
type OutgoingPublish struct {
	// Publisher is the publisher's name.
	Publisher string
	// Exchange and RoutingKey are where the message goes.
	Exchange, RoutingKey string
	// Msg is the message; an interceptor may change it.
	Msg *amqp.Publishing
}

// PublishOutcome classifies how a message settled.
type PublishOutcome int

const (
	// PublishAcked: the broker confirmed the message (basic.ack).
	PublishAcked PublishOutcome = iota
	// PublishNacked: the broker refused it (basic.nack, ErrNacked).
	PublishNacked
	// PublishReturned: the broker returned a mandatory message as
	// unroutable (a *ReturnedError).
	PublishReturned
	// PublishFailed: anything else: refused before it was written
	// (ErrInvalidMessage, ErrClosed, a full window past the context), its
	// context ended, its confirm was lost (ErrConfirmLost), Close took it
	// (ErrUnconfirmed), or the channel error it caused.
	PublishFailed
)

// String returns the outcome's name in lower case, such as "acked", as used
// in metric labels.
func (o PublishOutcome) String() string {
	switch o {
	case PublishAcked:
		return "acked"
	case PublishNacked:
		return "nacked"
	case PublishReturned:
		return "returned"
	case PublishFailed:
		return "failed"
	}
	return "PublishOutcome(" + strconv.Itoa(int(o)) + ")"
}

// PublishResult is the outcome of one message, as PublishSettled sees it.
type PublishResult struct {
	// Outcome classifies Err.
	Outcome PublishOutcome
	// Err is the error the message's Confirmation settled with (nil when
	// acked), or the error PublishAsync returned.
	Err error
	// MessageID is the message's MessageId.
	MessageID string
	// Written tells whether the message was written to a channel at least
	// once: a failed message that was never written cannot be a duplicate.
	Written bool
	// Settled is when the outcome was decided; the latency of a confirm is
	// Settled minus the time the interceptor ran.
	Settled time.Time
}

// publishOutcome classifies a Confirmation's error.
func publishOutcome(err error) PublishOutcome {
	switch {
	case err == nil:
		return PublishAcked
	case errors.Is(err, ErrNacked):
		return PublishNacked
	case errors.Is(err, ErrReturned):
		return PublishReturned
	}
	return PublishFailed
}

// pubMiddleware is a publisher's interceptor chain and the queue of outcomes
// waiting for their PublishSettled. It exists only when the publisher has
// interceptors, so a publisher without them pays one nil check per publish.
type pubMiddleware struct {
	chain []PublishInterceptor
	// slots holds one token per intercepted message whose PublishSettled
	// has not returned yet: at most MaxInFlight of them, so a slow
	// PublishSettled makes publishes wait for room instead of growing the
	// queue. Full policy: PublishAsync waits, bounded by its context.
	slots chan struct{}
	kick  chan struct{} // capacity 1: the queue has outcomes

	mu    sync.Mutex
	queue []settledMsg
}

// settledMsg is one outcome waiting for its PublishSettled.
type settledMsg struct {
	c  *Confirmation
	at time.Time
}

// newPubMiddleware returns the chain of opts, or nil without interceptors.
func newPubMiddleware(opts PublisherOptions) *pubMiddleware {
	if len(opts.Interceptors) == 0 {
		return nil
	}
	return &pubMiddleware{
		chain: append([]PublishInterceptor(nil), opts.Interceptors...),
		slots: make(chan struct{}, opts.MaxInFlight),
		kick:  make(chan struct{}, 1),
	}
}

// intercepted is PublishAsync with interceptors: it runs the chain, then
// accepts the message, and makes sure every interceptor's PublishSettled
// hears of the message exactly once, whether it is accepted or not.
func (p *Publisher) intercepted(ctx context.Context, exchange, key string, msg amqp.Publishing) (*Confirmation, error) {
	m := p.mw
	select {
	case m.slots <- struct{}{}:
	default:
		start := time.Now()
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("warren: publisher %s: no room: %d outcomes wait for the interceptors after %v: %w",
				p.opts.Name, cap(m.slots), time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-p.closing:
			return nil, p.closedErr()
		}
	}
	if msg.Headers != nil {
		h := make(amqp.Table, len(msg.Headers)+2)
		for k, v := range msg.Headers {
			h[k] = v
		}
		msg.Headers = h
	}
	// One allocation for both: the interceptors may keep pointers to them.
	box := &struct {
		pub OutgoingPublish
		msg amqp.Publishing
	}{msg: msg}
	pub := &box.pub
	*pub = OutgoingPublish{Publisher: p.opts.Name, Exchange: exchange, RoutingKey: key, Msg: &box.msg}
	ctx, after, err := p.runInterceptors(ctx, pub)
	msg = box.msg
	exchange, key = pub.Exchange, pub.RoutingKey
	var c *Confirmation
	if err == nil {
		c, err = p.accept(ctx, exchange, key, msg, after)
	}
	if err != nil || after == nil {
		// No outcome will be queued for the settle goroutine: the slot is
		// free now.
		<-m.slots
	}
	if err != nil {
		if after != nil {
			p.callSettled(after, PublishResult{Outcome: PublishFailed, Err: err, MessageID: msg.MessageId, Settled: time.Now()})
		}
		return nil, err
	}
	return c, nil
}

// runInterceptors runs the chain in order and composes the PublishSettled
// functions so they run in reverse order, like deferred calls. A panicking
// interceptor fails the publish with an error wrapping ErrHookPanicked; the
// interceptors before it still see the outcome.
func (p *Publisher) runInterceptors(ctx context.Context, pub *OutgoingPublish) (_ context.Context, after PublishSettled, err error) {
	if len(p.mw.chain) == 1 { // the common case, without the slice
		next, a, err := p.runInterceptor(p.mw.chain[0], 0, ctx, pub)
		if next == nil {
			next = ctx
		}
		return next, a, err
	}
	var afters []PublishSettled
	for i, ic := range p.mw.chain {
		next, a, perr := p.runInterceptor(ic, i, ctx, pub)
		if perr != nil {
			err = perr
			break
		}
		if next != nil {
			ctx = next
		}
		if a != nil {
			afters = append(afters, a)
		}
	}
	switch len(afters) {
	case 0:
	case 1:
		after = afters[0]
	default:
		after = func(r PublishResult) {
			for i := len(afters) - 1; i >= 0; i-- {
				p.callSettled(afters[i], r)
			}
		}
	}
	return ctx, after, err
}

// runInterceptor runs one interceptor and turns its panic into an error.
func (p *Publisher) runInterceptor(ic PublishInterceptor, i int, ctx context.Context, pub *OutgoingPublish) (next context.Context, after PublishSettled, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: publisher %s: interceptor %d: %v", ErrHookPanicked, p.opts.Name, i, r)
			p.s.log.Error("warren: publish interceptor panicked", "publisher", p.opts.Name, "interceptor", i,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	next, after = ic(ctx, pub)
	return next, after, nil
}

// callSettled calls f and recovers (logs) its panic: one bad observer must
// not take the publisher's settle goroutine down.
func (p *Publisher) callSettled(f PublishSettled, r PublishResult) {
	defer func() {
		if v := recover(); v != nil {
			p.s.log.Error("warren: publish interceptor's settle function panicked", "publisher", p.opts.Name,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	f(r)
}

// settledLocked queues c's outcome for its PublishSettled; retireLocked
// calls it once per message. Caller must hold p.mu.
func (p *Publisher) settledLocked(c *Confirmation) {
	if c.after == nil {
		return
	}
	m := p.mw
	m.mu.Lock()
	m.queue = append(m.queue, settledMsg{c: c, at: time.Now()})
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// notifySettled is the goroutine that calls PublishSettled for settled
// messages, in settle order, outside p.mu. It ends once Close has taken the
// unsettled messages (p.ctx ends then, and every later outcome was queued
// before), after a last drain.
func (p *Publisher) notifySettled() {
	m := p.mw
	for {
		select {
		case <-m.kick:
			p.drainSettled()
		case <-p.ctx.Done():
			// takeUnsettled cancels p.ctx and retires the rest under p.mu:
			// taking p.mu once orders this drain after all of them.
			p.mu.Lock()
			p.mu.Unlock()
			p.drainSettled()
			return
		}
	}
}

// drainSettled calls PublishSettled for every queued outcome.
func (p *Publisher) drainSettled() {
	m := p.mw
	for {
		m.mu.Lock()
		q := m.queue
		m.queue = nil
		m.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for i, s := range q {
			c := s.c
			err := c.outcome.result()
			p.callSettled(c.after, PublishResult{
				Outcome: publishOutcome(err), Err: err, MessageID: c.msg.MessageId,
				Written: c.written.Load(), Settled: s.at,
			})
			q[i] = settledMsg{}
			<-m.slots
		}
	}
}
