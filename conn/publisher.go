package conn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultMaxInFlight is the default PublisherOptions.MaxInFlight.
const DefaultMaxInFlight = 256

// ConfirmLostPolicy says what a Publisher does with a message that was written
// to a channel which then died before the broker confirmed it. The broker may
// or may not have the message: only the caller can decide whether a duplicate
// or a gap is the lesser evil.
type ConfirmLostPolicy int

const (
	// ConfirmLostRepublish publishes the message again, with the same
	// MessageId, on the next channel, until the broker confirms it or the
	// context it was published with ends: at least once, and consumers may
	// see duplicates, which they can drop by MessageId. A message the broker
	// nacks is republished too, up to PublisherOptions.NackRepublishes
	// times.
	ConfirmLostRepublish ConfirmLostPolicy = iota
	// ConfirmLostFail fails the message with an error wrapping ErrConfirmLost
	// and leaves the decision to republish to the caller; a nacked message
	// fails with ErrNacked at once.
	ConfirmLostFail
)

// String returns the policy's name, such as "Republish".
func (p ConfirmLostPolicy) String() string {
	switch p {
	case ConfirmLostRepublish:
		return "Republish"
	case ConfirmLostFail:
		return "Fail"
	}
	return "ConfirmLostPolicy(" + strconv.Itoa(int(p)) + ")"
}

// PublisherOptions configures a Publisher. The zero value of every field means
// its default; NewPublisher validates and copies the struct.
type PublisherOptions struct {
	// Name identifies the publisher in logs, errors and stall reports.
	// Defaults to "publisher".
	Name string

	// MaxInFlight bounds the messages accepted and not yet settled (confirmed,
	// nacked, returned or failed), including those waiting to be republished
	// after a lost connection. A publish that finds the window full waits for
	// room, bounded by its context. Defaults to 256.
	MaxInFlight int

	// OnConfirmLost says what happens to a message whose channel died after
	// it was written and before its confirm. Messages accepted but not yet
	// written are always carried over to the next channel. Defaults to
	// ConfirmLostRepublish.
	OnConfirmLost ConfirmLostPolicy

	// NackRepublishes bounds how many times a message the broker nacked
	// (basic.nack) is republished under ConfirmLostRepublish, with the same
	// MessageId, after a wait of 250 ms that doubles each time (up to 5 s):
	// a quorum queue nacks what it gets while it elects a new leader after a
	// node's loss, which passes. Past the limit, or once its context ends,
	// the message fails with an error wrapping ErrNacked that says how many
	// nacks it got; a full queue with x-overflow reject-publish nacks until
	// consumers catch up, so it fails that way too. Under ConfirmLostFail,
	// or with a negative value, a nack fails the message with ErrNacked at
	// once. Defaults to 5 (waits of 0.25, 0.5, 1, 2 and 4 s, 7.75 s in all).
	//
	// A wait ends early when the publisher sees the cause pass: the live
	// channel acks a message written after the nacked one, or the channel
	// that nacked is replaced for nacking everything. Each sign ends a
	// message's wait at most once, and the nack it answers is not counted,
	// so an early end only adds attempts, never shortens the schedule.
	NackRepublishes int

	// nackBackoff overrides the first wait before a nack's republication
	// (pubNackBackoff), for tests.
	nackBackoff time.Duration

	// Mandatory publishes with the mandatory flag: a message the broker cannot
	// route to any queue fails with a *ReturnedError instead of being dropped
	// by the broker. The publisher matches a return to its message by a
	// header of its own, x-warren-seq, which it adds to a copy of each
	// message's Headers (consumers see it; the name is reserved). Defaults to
	// false.
	Mandatory bool

	// Interceptors see every message before it is written and its outcome
	// once it settles (see PublishInterceptor), in order: the first sees the
	// message first and its outcome last. They are how tracing and metrics
	// modules (contrib/otel, contrib/prometheus) plug in. Defaults to none,
	// which costs one nil check per publish.
	Interceptors []PublishInterceptor
}

// withDefaults returns a copy of o with zero fields defaulted.
func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.Name == "" {
		o.Name = "publisher"
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.NackRepublishes == 0 {
		o.NackRepublishes = DefaultNackRepublishes
	}
	return o
}

// validate checks defaulted options; every failure wraps ErrInvalidOptions.
func (o PublisherOptions) validate() error {
	if o.MaxInFlight < 0 {
		return fmt.Errorf("%w: PublisherOptions.MaxInFlight must not be negative, got %d", ErrInvalidOptions, o.MaxInFlight)
	}
	if o.OnConfirmLost != ConfirmLostRepublish && o.OnConfirmLost != ConfirmLostFail {
		return fmt.Errorf("%w: PublisherOptions.OnConfirmLost: unknown policy %v", ErrInvalidOptions, o.OnConfirmLost)
	}
	for i, ic := range o.Interceptors {
		if ic == nil {
			return fmt.Errorf("%w: PublisherOptions.Interceptors[%d] is nil", ErrInvalidOptions, i)
		}
	}
	return nil
}

// Publisher publishes with publisher confirms on a channel of its own that it
// reopens, in confirm mode, on every new connection before it accepts a
// publish. Every message it accepts settles exactly once (see Confirmation):
// a message whose channel dies before its confirm is republished on the next
// channel (ConfirmLostRepublish) or failed with ErrConfirmLost
// (ConfirmLostFail), never dropped silently.
//
// A message that cannot be encoded, or that the broker would refuse for
// sure, is rejected by PublishAsync with ErrInvalidMessage before it is
// written. A message that makes the broker close the channel anyway (a
// missing exchange, a refused permission) fails alone with the broker's
// error: after such a close the messages that were in flight are written
// again one at a time until the one that closes the channel is found, so the
// others are confirmed as if it had never been sent.
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
	window   chan struct{} // one token per accepted, unsettled message
	remove   func()        // unregisters the hook
	work     *workGroup    // this publisher's goroutines, also counted in s.work
	warnRate dropWarner
	mw       *pubMiddleware // nil without Interceptors

	// ctx ends when Close has taken the unsettled messages: nothing is
	// written or reopened after that.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce    sync.Once
	closing      chan struct{} // closed when Close starts: no new publishes
	closed       chan struct{} // closed when the first Close has finished
	closeErr     error         // written before closed is closed
	closedByUser bool          // written before closed is closed
	supOnce      sync.Once
	supClosing   chan struct{} // closed when Supervisor.Close reaches the publisher

	mu        sync.Mutex
	led       ledger        // every accepted, unsettled message
	cur       *pubChannel   // the channel accepting publishes, or nil
	installed chan struct{} // closed when cur is set; replaced when it ends
	draining  bool          // Close has started
	drained   chan struct{} // closed once draining and the ledger is empty
	shut      bool          // Close took the unsettled messages
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
		work:       newWorkGroup(),
		warnRate:   dropWarner{interval: dropWarnInterval},
		closing:    make(chan struct{}),
		closed:     make(chan struct{}),
		supClosing: make(chan struct{}),
		installed:  make(chan struct{}),
		drained:    make(chan struct{}),
		mw:         newPubMiddleware(opts),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	remove, err := s.AddHook(ctx, Hook{Name: "publisher " + opts.Name, Phase: PhasePublishers, Up: p.up, Close: p.hookClose})
	if err != nil {
		p.cancel()
		return nil, err
	}
	p.remove = remove
	if p.mw != nil {
		p.goWork(p.notifySettled)
	}
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
// It returns ctx's error if ctx ends first, ErrClosed once the publisher or
// the supervisor is closing, and at once an error wrapping ErrInvalidMessage
// and naming the field for a message that cannot be written: a short-string
// field (exchange, routing key, ContentType, ContentEncoding, CorrelationId,
// ReplyTo, Expiration, MessageId, Type, UserId, AppId, a header name) over
// 255 bytes, a header value AMQP cannot carry, an Expiration that is not a
// number of milliseconds, properties larger than the connection's frame
// size, or a UserId other than the connection's user (the broker refuses
// it; impersonation, RabbitMQ's impersonator tag, is not supported). An empty msg.MessageId is filled in with an id unique to this
// publisher. The caller's Headers table is never modified.
//
// ctx keeps bounding the message after PublishAsync returns: if its channel
// dies before the confirm, the message is republished only while ctx lasts,
// and otherwise fails with an error wrapping ErrConfirmLost and ctx's error;
// a message not yet written fails with ctx's error as soon as ctx ends.
func (p *Publisher) PublishAsync(ctx context.Context, exchange, key string, msg amqp.Publishing) (*Confirmation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if msg.MessageId == "" {
		msg.MessageId = p.nextID()
	}
	if p.mw != nil {
		return p.intercepted(ctx, exchange, key, msg)
	}
	return p.accept(ctx, exchange, key, msg, nil)
}

// accept validates msg, waits for room and queues it; after, if not nil,
// hears of its outcome.
func (p *Publisher) accept(ctx context.Context, exchange, key string, msg amqp.Publishing, after PublishSettled) (*Confirmation, error) {
	size, err := pubPropsSize(exchange, key, &msg, p.opts.Mandatory)
	if err != nil {
		return nil, fmt.Errorf("warren: publisher %s: %w", p.opts.Name, err)
	}
	select {
	case <-p.closing:
		return nil, p.closedErr()
	default:
	}
	select {
	case p.window <- struct{}{}:
	default:
		start := time.Now()
		select {
		case p.window <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("warren: publisher %s: no room in its window (MaxInFlight %d) after %v: %w",
				p.opts.Name, p.opts.MaxInFlight, time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-p.closing:
			return nil, p.closedErr()
		}
	}
	c := &Confirmation{ctx: ctx, exchange: exchange, key: key, msg: msg, size: size, after: after}
	if err := p.enqueue(ctx, c); err != nil {
		<-p.window
		return nil, err
	}
	return c, nil
}

// enqueue waits until the connection is publishable and a confirm-mode
// channel is installed, then adds c to the ledger for that channel's writer.
func (p *Publisher) enqueue(ctx context.Context, c *Confirmation) error {
	start := time.Now()
	for {
		if err := p.s.waitPublishable(ctx); err != nil {
			return err
		}
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return p.closedErr()
		}
		if pc := p.cur; pc != nil {
			if err := pc.admits(c); err != nil {
				p.mu.Unlock()
				return fmt.Errorf("warren: publisher %s: %w", p.opts.Name, err)
			}
			p.led.push(c)
			if p.opts.Mandatory {
				c.msg.Headers = pubStamp(c.msg.Headers, c.seq)
			}
			if ctx.Done() != nil {
				c.stopExpiry = context.AfterFunc(ctx, func() { p.expire(c) })
			}
			p.kickLocked(pc)
			p.mu.Unlock()
			return nil
		}
		installed := p.installed
		p.mu.Unlock()
		// Ready but no channel: the broker closed ours and it is being
		// reopened, or Up has not installed it yet.
		select {
		case <-installed:
		case <-ctx.Done():
			return p.s.notReady(start, ctx.Err())
		case <-p.closing:
			return p.closedErr()
		}
	}
}

// closedErr is the error of a publish refused because Close started: it
// says whether the publisher was closed or its supervisor.
func (p *Publisher) closedErr() error {
	if st := p.s.State(); st == Closing || st == Closed {
		return p.s.closedErr()
	}
	return fmt.Errorf("%w: publisher %s was closed", ErrClosed, p.opts.Name)
}

// nextID returns a message id unique to this publisher: a random prefix per
// publisher and a counter.
func (p *Publisher) nextID() string {
	var buf [32]byte
	b := append(buf[:0], p.idPrefix...)
	return string(strconv.AppendUint(b, p.ids.Add(1), 36))
}

// pubSeqHeader is the header that carries a mandatory message's sequence
// number, so that a basic.return is matched to its publish by something the
// publisher owns, never by the caller's MessageId.
const pubSeqHeader = "x-warren-seq"

// pubStamp returns a copy of h with the sequence header set: the caller's
// table is theirs and may be shared between messages.
func pubStamp(h amqp.Table, seq uint64) amqp.Table {
	stamped := make(amqp.Table, len(h)+1)
	for k, v := range h {
		stamped[k] = v
	}
	stamped[pubSeqHeader] = int64(seq)
	return stamped
}

// pubMaxShort is the longest AMQP short string: its length is one octet.
const pubMaxShort = 255

// pubHeaderOverhead is the part of a content header frame around the
// properties: frame header and end, class, weight and body size.
const pubHeaderOverhead = 8 + 12

// pubInvalid returns an error wrapping ErrInvalidMessage that names field.
func pubInvalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidMessage, field, fmt.Sprintf(format, args...))
}

// pubPropsSize checks every field of a publish that amqp091-go cannot encode
// (an encoding error closes the whole connection) or that RabbitMQ refuses
// whatever the connection (an Expiration that is not a number closes the
// channel), and returns an upper bound of the size of msg's encoded
// properties, the sequence header included when stamp is set.
func pubPropsSize(exchange, key string, msg *amqp.Publishing, stamp bool) (int, error) {
	shorts := [...]struct{ name, v string }{
		{"exchange", exchange}, {"routing key", key}, {"ContentType", msg.ContentType},
		{"ContentEncoding", msg.ContentEncoding}, {"CorrelationId", msg.CorrelationId},
		{"ReplyTo", msg.ReplyTo}, {"Expiration", msg.Expiration}, {"MessageId", msg.MessageId},
		{"Type", msg.Type}, {"UserId", msg.UserId}, {"AppId", msg.AppId},
	}
	size := 2 + 1 + 1 + 8 + 4 // flags, delivery mode, priority, timestamp, table length
	for _, f := range shorts {
		if len(f.v) > pubMaxShort {
			return 0, pubInvalid(f.name, "is %d bytes, longer than %d", len(f.v), pubMaxShort)
		}
		size += 1 + len(f.v)
	}
	if msg.Expiration != "" {
		// RabbitMQ reads it as milliseconds, 0 to 2^32-1.
		if _, err := strconv.ParseUint(msg.Expiration, 10, 32); err != nil {
			return 0, pubInvalid("Expiration", "%q is not a number of milliseconds", msg.Expiration)
		}
	}
	n, err := pubTableSize(msg.Headers, "Headers")
	if err != nil {
		return 0, err
	}
	if stamp {
		n += 1 + len(pubSeqHeader) + 9
	}
	return size + n, nil
}

// pubTableSize returns the encoded size of t's fields, or an error naming the
// first field amqp091-go cannot encode or RabbitMQ cannot decode.
func pubTableSize(t amqp.Table, path string) (int, error) {
	n := 0
	for k, v := range t {
		if len(k) > pubMaxShort {
			return 0, pubInvalid(path, "has a key of %d bytes, longer than %d", len(k), pubMaxShort)
		}
		m, err := pubFieldSize(v, path+"["+strconv.Quote(k)+"]")
		if err != nil {
			return 0, err
		}
		n += 1 + len(k) + m
	}
	return n, nil
}

// pubFieldSize returns the encoded size of one table or array value, tag
// included, following amqp091-go's writeField.
func pubFieldSize(v any, path string) (int, error) {
	switch v := v.(type) {
	case nil:
		return 1, nil
	case bool, byte, int8:
		return 2, nil
	case int16, uint16:
		return 3, nil
	case int, int32, uint32:
		return 5, nil
	case int64, time.Time:
		return 9, nil
	case amqp.Decimal:
		return 6, nil
	case float32:
		return pubFloatSize(float64(v), 5, path)
	case float64:
		return pubFloatSize(v, 9, path)
	case string:
		return 5 + len(v), nil
	case []byte:
		return 5 + len(v), nil
	case []any:
		n := 5
		for i, e := range v {
			m, err := pubFieldSize(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case amqp.Table:
		n, err := pubTableSize(v, path)
		return 5 + n, err
	}
	return 0, pubInvalid(path, "has type %T, which AMQP cannot carry", v)
}

// pubFloatSize refuses NaN and infinities: RabbitMQ cannot decode them.
func pubFloatSize(f float64, size int, path string) (int, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, pubInvalid(path, "is %v, which RabbitMQ cannot decode", f)
	}
	return size, nil
}
