package conn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Publisher publishes with publisher confirms on a channel of its own that it
// reopens, in confirm mode, on every new connection before it accepts a
// publish. Every message it accepts settles exactly once (see Confirmation):
// a message whose channel dies before its confirm is republished on the next
// channel (ConfirmLostRepublish) or failed with ErrConfirmLost
// (ConfirmLostFail), never dropped silently.
//
// Callers never write to the socket themselves: a publish waits (bounded by
// its context) for room in the window and for a Ready, unblocked connection,
// then queues the message for the channel's writer goroutine. So a write stuck
// behind TCP backpressure delays the message, not the caller's return.
//
// A Publisher is safe for concurrent use. Create it with
// Supervisor.NewPublisher; stop it with Close or Supervisor.Close.
type Publisher struct {
	s        *Supervisor
	opts     PublisherOptions
	idPrefix string
	ids      atomic.Uint64
	// window holds one token per accepted, unsettled message.
	window   chan struct{}
	remove   func() // unregisters the ready hook
	warnRate dropWarner

	// ctx ends when Close gives up on the outstanding messages; every
	// goroutine of the publisher is bounded by it.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce    sync.Once
	closing      chan struct{} // closed when Close starts: no new publishes
	closed       chan struct{} // closed when the first Close has finished
	closeErr     error         // written before closed is closed
	closedByUser bool          // written before closed is closed
	supOnce      sync.Once
	supClosing   chan struct{} // closed when Supervisor.Close reaches the publisher

	upMu sync.Mutex // serializes Up: one connection at a time

	mu         sync.Mutex
	gen        uint64             // increments with every Up; fences off stale reopens
	connCancel context.CancelFunc // ends the current connection's context
	cur        *publisherChannel  // the channel accepting publishes, or nil
	installed  chan struct{}      // closed when cur is set; replaced when it ends
	retry      []*Confirmation    // waiting for the next channel, in publish order
	seq        uint64
	inflight   int           // accepted and unsettled messages
	draining   bool          // Close has started
	drained    chan struct{} // closed once draining and inflight == 0
	isDrained  bool
	shut       bool // Close has settled everything; nothing is published any more
	goroutines int
	idle       chan struct{} // closed once shut and goroutines == 0
	isIdle     bool
}

// NewPublisher creates a Publisher on s and registers it as a PhasePublishers
// ready hook, so it reopens its channel after topology and consumers on every
// new connection. If s is Ready the channel is opened before NewPublisher
// returns, and a failure to open it is returned; otherwise it opens on the
// next connection and publishes wait for it. It returns ErrClosed once s is
// closing, and an error wrapping ErrInvalidOptions for bad options.
func (s *Supervisor) NewPublisher(ctx context.Context, opts PublisherOptions) (*Publisher, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("warren: publisher %s: message id prefix: %w", opts.Name, err)
	}
	p := &Publisher{
		s:          s,
		opts:       opts,
		idPrefix:   hex.EncodeToString(rnd[:]) + "-",
		window:     make(chan struct{}, opts.MaxInFlight),
		warnRate:   dropWarner{interval: dropWarnInterval},
		closing:    make(chan struct{}),
		closed:     make(chan struct{}),
		supClosing: make(chan struct{}),
		installed:  make(chan struct{}),
		drained:    make(chan struct{}),
		idle:       make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	remove, err := s.AddHook(ctx, Hook{
		Name:  "publisher " + opts.Name,
		Phase: PhasePublishers,
		Up:    p.up,
		Down:  p.down,
		Close: p.hookClose,
	})
	if err != nil {
		p.cancel()
		return nil, err
	}
	p.remove = remove
	return p, nil
}

// Publish publishes msg to exchange with routing key key and waits for the
// broker's confirm. It returns nil only once the broker has acknowledged the
// message. Waits for room in the window, for a Ready and unblocked connection
// and for the confirm are all bounded by ctx, which also bounds
// republication after a lost connection. See PublishAsync for the errors.
func (p *Publisher) Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	c, err := p.PublishAsync(ctx, exchange, key, msg)
	if err != nil {
		return err
	}
	return c.Wait(ctx)
}

// PublishAsync hands msg to the publisher and returns its Confirmation
// without waiting for the broker. It waits, bounded by ctx, for room in the
// window (MaxInFlight) and until the supervisor is Ready, the broker is not
// blocking the connection and the publisher's channel is in confirm mode.
// It returns ctx's error if ctx ends first, and ErrClosed once the publisher
// or the supervisor is closing. An empty msg.MessageId is filled in with an
// id unique to this publisher.
//
// ctx keeps bounding the message after PublishAsync returns: if its channel
// dies before the confirm, the message is republished only while ctx lasts,
// and otherwise fails with an error wrapping ErrConfirmLost and ctx's error.
func (p *Publisher) PublishAsync(ctx context.Context, exchange, key string, msg amqp.Publishing) (*Confirmation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := msg.Headers.Validate(); err != nil {
		return nil, fmt.Errorf("warren: publisher %s: %w", p.opts.Name, err)
	}
	select {
	case <-p.closing:
		return nil, ErrClosed
	default:
	}
	select {
	case p.window <- struct{}{}:
	default:
		select {
		case p.window <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.closing:
			return nil, ErrClosed
		}
	}
	if msg.MessageId == "" {
		msg.MessageId = p.nextID()
	}
	c := &Confirmation{p: p, ctx: ctx, exchange: exchange, key: key, msg: msg, done: make(chan struct{})}
	if err := p.enqueue(ctx, c); err != nil {
		<-p.window
		return nil, err
	}
	return c, nil
}

// enqueue waits until the connection is publishable and a confirm-mode
// channel is installed, then queues c for that channel's writer.
func (p *Publisher) enqueue(ctx context.Context, c *Confirmation) error {
	for {
		if err := p.s.waitPublishable(ctx); err != nil {
			return err
		}
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return ErrClosed
		}
		if pc := p.cur; pc != nil {
			p.seq++
			c.seq = p.seq
			pc.queue.push(c)
			p.inflight++
			p.mu.Unlock()
			pc.kick()
			return nil
		}
		installed := p.installed
		p.mu.Unlock()
		// Ready but no channel: the broker closed ours and it is being
		// reopened, or Up has not installed it yet.
		select {
		case <-installed:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.closing:
			return ErrClosed
		}
	}
}

// nextID returns a message id unique to this publisher: a random prefix per
// publisher and a counter.
func (p *Publisher) nextID() string {
	var buf [32]byte
	b := append(buf[:0], p.idPrefix...)
	return string(strconv.AppendUint(b, p.ids.Add(1), 36))
}

// checkDrainedLocked releases Close once the last message has settled.
// Caller must hold p.mu.
func (p *Publisher) checkDrainedLocked() {
	if p.draining && p.inflight == 0 && !p.isDrained {
		p.isDrained = true
		close(p.drained)
	}
}

// started records a new goroutine of the publisher. Caller must hold p.mu.
func (p *Publisher) startedLocked(n int) { p.goroutines += n }

// exited records the end of a goroutine of the publisher.
func (p *Publisher) exited() {
	p.mu.Lock()
	p.goroutines--
	p.checkIdleLocked()
	p.mu.Unlock()
}

// checkIdleLocked releases waiters once Close has settled everything and the
// last goroutine has exited. Caller must hold p.mu.
func (p *Publisher) checkIdleLocked() {
	if p.shut && p.goroutines == 0 && !p.isIdle {
		p.isIdle = true
		close(p.idle)
	}
}
