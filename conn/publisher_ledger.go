package conn

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Confirmation is the pending outcome of one message handed to a Publisher.
// It settles exactly once: nil when the broker confirmed the message, or an
// error (ErrNacked, a *ReturnedError, ErrConfirmLost, ErrUnconfirmed,
// ErrInvalidMessage, the channel error the message caused, or its context's
// error).
type Confirmation struct {
	ctx      context.Context // bounds the message's life, republications included
	exchange string
	key      string
	msg      amqp.Publishing
	size     int // upper bound of its encoded properties
	// outcome is the settled outcome; done, made by the first Done or Wait
	// that finds the message unsettled, is closed when it settles. Most
	// messages settle before anyone looks, and never need a channel.
	outcome pubSettlement
	after   PublishSettled // the interceptors' settle function, or nil
	// taker is the channel whose writer took the message and has not
	// written it yet, pubWrote once it starts the write, or nil. The writer
	// and expire race for it with a compare-and-swap: a message expires
	// before its write or is written, never both.
	taker   atomic.Pointer[pubChannel]
	written atomic.Bool // written to a channel at least once

	// Guarded by p.mu.
	seq        uint64      // publish order; the ledger's key, renewed when a nack sends it to the back
	stamp      uint64      // its first seq, for good: the x-warren-seq a return is matched by
	nacks      int         // basic.nacks it got
	forgiven   pubForgiven // nacks not counted, each kind once (publisher_nack_release.go)
	parked     bool        // nacked, waiting for its republication (see parkLocked)
	nackedLast bool        // nacked, and not taken by a writer since
	stopPark   func() bool // stops the timer of a parked message
	parkGen    uint64      // counts parks; a timer unparks only its own park
	nackedBy   *pubChannel // the channel whose nack parked it, while parked
	pc         *pubChannel // the live channel it was written on, or nil
	tag        uint64      // its delivery tag on pc
	suspect    bool        // in flight when a channel died of a broker error
	deaths     int         // such deaths it lived through
	settled    bool
	stopExpiry func() bool
}

// MessageID returns the message's MessageId: the caller's, or the one the
// publisher stamped on it. Republications carry the same id, so consumers can
// drop duplicates.
func (c *Confirmation) MessageID() string { return c.msg.MessageId }

// Done returns a channel closed once the outcome is known.
func (c *Confirmation) Done() <-chan struct{} {
	done, _, _ := c.outcome.watch()
	return done
}

// Wait waits for the outcome, bounded by ctx: nil once the broker has
// confirmed the message, or why it will not be. If ctx ends first Wait
// returns ctx's error and the message stays in flight: it may still be
// confirmed, and its own context (the one it was published with) still
// bounds its republication.
func (c *Confirmation) Wait(ctx context.Context) error {
	done, err, settled := c.outcome.watch()
	if settled {
		return err
	}
	select {
	case <-done:
		_, err, _ = c.outcome.watch()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pubSettlement is a message's outcome, set once, with a channel made only
// for those who wait before it is set.
type pubSettlement struct {
	mu      sync.Mutex
	done    chan struct{} // nil until someone waits
	err     error
	settled bool
}

// pubSettled is the Done channel of a message settled before anyone asked.
var pubSettled = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// watch returns the channel closed at settlement, and the outcome if it is
// settled already.
func (o *pubSettlement) watch() (done <-chan struct{}, err error, settled bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done == nil {
		if o.settled {
			return pubSettled, o.err, true
		}
		o.done = make(chan struct{})
	}
	return o.done, o.err, o.settled
}

// result is the recorded outcome; only meaningful once settled.
func (o *pubSettlement) result() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// set records err as the outcome and wakes the waiters; only retireLocked
// calls it, once.
func (o *pubSettlement) set(err error) {
	o.mu.Lock()
	o.err, o.settled = err, true
	if o.done != nil {
		close(o.done)
	}
	o.mu.Unlock()
}

// ledger holds a publisher's unsettled messages in sequence (publish) order.
// The first sent of them are written on the current channel and await its
// confirms, in delivery-tag order; the rest wait for the writer. A channel
// that ends returns all of them to the writer (sent = 0), so the next channel
// writes them first, in their original order. A nacked message that will be
// republished leaves the sequence for parked until its backoff ends, then
// joins it again at the back, with a new seq. Its size (sequence and parked)
// is bounded by the publisher's window.
type ledger struct {
	q      []*Confirmation // q[head:] are the messages, by seq
	head   int
	sent   int
	seq    uint64
	parked map[*Confirmation]struct{} // nacked, waiting to join q again
}

// unsettled returns how many messages the ledger holds, parked ones
// included: the publisher is drained when it is 0.
func (l *ledger) unsettled() int { return l.len() + len(l.parked) }

func (l *ledger) len() int               { return len(l.q) - l.head }
func (l *ledger) at(i int) *Confirmation { return l.q[l.head+i] }
func (l *ledger) all() []*Confirmation   { return l.q[l.head:] }
func (l *ledger) index(c *Confirmation) int {
	return l.search(func(d *Confirmation) bool { return d.seq >= c.seq })
}

func (l *ledger) search(f func(*Confirmation) bool) int {
	q := l.all()
	return sort.Search(len(q), func(i int) bool { return f(q[i]) })
}

// push appends c with the next sequence number; the first one is its
// stamp for good.
func (l *ledger) push(c *Confirmation) {
	l.seq++
	c.seq = l.seq
	if c.stamp == 0 {
		c.stamp = c.seq
	}
	if l.head > 0 && l.head >= len(l.q)/2 {
		n := copy(l.q, l.q[l.head:])
		clear(l.q[n:])
		l.q, l.head = l.q[:n], 0
	}
	l.q = append(l.q, c)
}

// sentWith returns the message written on the current channel with
// delivery tag tag, or nil. Confirms arrive in tag order (amqp091-go
// resequences them), so it is the first message but for a message Close took.
func (l *ledger) sentWith(tag uint64) *Confirmation {
	i := l.search(func(d *Confirmation) bool { return d.pc == nil || d.tag >= tag })
	if i < l.sent && l.at(i).tag == tag {
		return l.at(i)
	}
	return nil
}

// remove takes c out of the ledger, from the sequence or from parked.
func (l *ledger) remove(c *Confirmation) {
	if c.parked {
		c.parked = false
		delete(l.parked, c)
		return
	}
	i := l.index(c)
	if i == l.len() || l.at(i) != c {
		return
	}
	if i < l.sent {
		l.sent--
	}
	if i == 0 {
		l.q[l.head] = nil
		l.head++
		return
	}
	copy(l.q[l.head+i:], l.q[l.head+i+1:])
	l.q[len(l.q)-1] = nil
	l.q = l.q[:len(l.q)-1]
}

// retireLocked settles c with err: the only place a message's outcome is
// recorded. It takes c out of the ledger, stops watching its context, frees
// its window slot and wakes its waiters; a message already settled is left
// alone, which is what makes settling happen once. Caller must hold p.mu.
func (p *Publisher) retireLocked(c *Confirmation, err error) {
	if c.settled {
		return
	}
	c.settled, c.pc = true, nil
	c.taker.Store(nil) // a writer that took it and has not written it skips it
	p.led.remove(c)
	if c.stopExpiry != nil {
		c.stopExpiry()
	}
	if c.stopPark != nil {
		c.stopPark()
	}
	// The slot first: a caller that waits for this message and then
	// publishes the next one finds room without waiting a second time.
	<-p.window
	c.outcome.set(err)
	p.settledLocked(c)
	if p.draining && p.led.unsettled() == 0 && !p.shut {
		select {
		case <-p.drained:
		default:
			close(p.drained)
		}
	}
}

// pubWrote marks a message whose write has started.
var pubWrote = new(pubChannel)

// expire fails a message whose context ended before it was written, even if
// a writer has taken it, or while it waited to be written again; a message
// the broker has is left to its confirm.
func (p *Publisher) expire(c *Confirmation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.pc == nil || c.taker.CompareAndSwap(c.pc, nil) {
		p.retireLocked(c, pubExpired(c))
	}
}

// pubMaxDeaths caps the channel deaths of a broker error a message may live
// through while written. Isolation normally finds the culprit at its first
// death; the cap stops a message that closes channels only sometimes.
const pubMaxDeaths = 3

// endLocked retires pc after its channel or connection ended with reason (nil
// for a close of ours). It decides the fate of the messages written on it and
// unconfirmed: a message alone in flight when the broker closed the channel
// (or the connection) with an error is its cause, and fails with that error;
// others fail if their context has ended, under ConfirmLostFail, or past
// pubMaxDeaths, and are otherwise written again on the next channel, one at a
// time if a broker error makes any of them suspect. It reports whether it
// retired pc (false if it was retired already). Caller must hold p.mu.
func (p *Publisher) endLocked(pc *pubChannel, reason error) bool {
	if pc.over {
		return false
	}
	pc.over = true
	pc.cancel()
	if p.cur == pc {
		p.cur = nil
		p.installed = make(chan struct{})
	}
	written := append([]*Confirmation(nil), p.led.all()[:p.led.sent]...)
	p.led.sent = 0
	var ae *amqp.Error
	blame := errors.As(reason, &ae) && ae.Server && ae.Code != amqp.ConnectionForced
	for _, c := range written {
		c.pc = nil
		if blame {
			c.deaths++
		}
		switch {
		case blame && (len(written) == 1 || c.deaths >= pubMaxDeaths):
			p.retireLocked(c, fmt.Errorf("warren: publisher %s: the broker closed the channel on this message: %w", p.opts.Name, reason))
		case c.ctx.Err() != nil:
			p.retireLocked(c, pubConfirmLost(c.ctx.Err()))
		case p.opts.OnConfirmLost == ConfirmLostFail:
			p.retireLocked(c, pubConfirmLost(reason))
		default:
			c.suspect = c.suspect || blame
		}
	}
	return true
}

// takeUnsettled shuts the publisher: every message still unsettled fails
// with ErrUnconfirmed, in publish order, and their ids are returned. It
// returns the channel that was live, if any.
func (p *Publisher) takeUnsettled() (*pubChannel, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shut = true
	p.cancel()
	// In publish order: a parked message went to the back of the sequence.
	all := append([]*Confirmation(nil), p.led.all()...)
	for c := range p.led.parked {
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].stamp < all[j].stamp })
	var ids []string
	for _, c := range all {
		ids = append(ids, c.msg.MessageId)
		p.retireLocked(c, ErrUnconfirmed)
	}
	return p.cur, ids
}

// ReturnedError is the error of a mandatory message the broker returned as
// unroutable (basic.return). It matches ErrReturned.
type ReturnedError struct {
	// Return is the message as the broker returned it, with its reply code
	// and text (usually 312 NO_ROUTE).
	Return amqp.Return
}

// Error describes the return.
func (e *ReturnedError) Error() string {
	return fmt.Sprintf("%v: exchange %q, routing key %q: %d %s",
		ErrReturned, e.Return.Exchange, e.Return.RoutingKey, e.Return.ReplyCode, e.Return.ReplyText)
}

// Unwrap returns ErrReturned.
func (e *ReturnedError) Unwrap() error { return ErrReturned }

// pubMaxListedIDs bounds how many message ids an UnconfirmedError prints; the
// field keeps all of them.
const pubMaxListedIDs = 20

// UnconfirmedError is returned by Publisher.Close when messages were still
// unsettled at the end of its context. Each of them also failed on its own
// Confirmation with ErrUnconfirmed. It matches ErrUnconfirmed.
type UnconfirmedError struct {
	// MessageIDs lists the unsettled messages in publish order.
	MessageIDs []string
}

// Error names the unsettled messages, the first few of them by id.
func (e *UnconfirmedError) Error() string {
	ids := e.MessageIDs
	more := ""
	if len(ids) > pubMaxListedIDs {
		more = fmt.Sprintf(" and %d more", len(ids)-pubMaxListedIDs)
		ids = ids[:pubMaxListedIDs]
	}
	return fmt.Sprintf("%v: %d message(s): %s%s", ErrUnconfirmed, len(e.MessageIDs), strings.Join(ids, ", "), more)
}

// Unwrap returns ErrUnconfirmed.
func (e *UnconfirmedError) Unwrap() error { return ErrUnconfirmed }

// pubConfirmLost is the error of a written message that will not be
// republished, because of reason (the channel's end, or the message's own
// context).
func pubConfirmLost(reason error) error {
	if reason == nil {
		return ErrConfirmLost
	}
	return fmt.Errorf("%w: %w", ErrConfirmLost, reason)
}

// pubExpired is the error of a message whose context ended before it could
// be (re)published. Caller must hold p.mu.
func pubExpired(c *Confirmation) error {
	if c.nackedLast {
		return pubNackedErr(c, c.ctx.Err())
	}
	if c.written.Load() {
		return pubConfirmLost(c.ctx.Err())
	}
	return c.ctx.Err()
}

// DefaultNackRepublishes is the default PublisherOptions.NackRepublishes.
const DefaultNackRepublishes = 5

// pubNackBackoff is the wait before the first republication of a nacked
// message; it doubles for each further one, up to pubNackBackoffMax. The
// first wait is short because it is what a failover adds: a quorum queue
// nacks while it elects a leader (0.3-0.9 s measured on an idle machine,
// see integration/cluster), and a message nacked early in the election is
// confirmed at its first republication after the election ends, so the
// wait is added to the confirm gap (a 1 s first wait made it 1-2 s). The
// waits still add up to 7.75 s over the default 5 republications (0.25,
// 0.5, 1, 2, 4 s): longer than a slow election on a loaded machine, or a
// new quorum queue starting its members, and a nack storm is not
// republished into the same storm at once.
const (
	pubNackBackoff    = 250 * time.Millisecond
	pubNackBackoffMax = 5 * time.Second
)

// nackedLocked handles the broker's basic.nack of c, written on the live
// channel. RabbitMQ nacks a message when a queue it was routed to could not
// take it: a quorum queue without a leader (the leader's node stopped or
// died and the election is not over, or a majority is gone), a queue process
// that crashed (an internal error), or a full queue with x-overflow
// reject-publish. The first two pass, the last lasts until consumers catch
// up, so a republication of the last is bounded too: under
// ConfirmLostRepublish a nacked message is republished (same MessageId, same
// x-warren-seq) after a backoff, up to NackRepublishes times and while its
// context lasts, and then fails with an error wrapping ErrNacked; under
// ConfirmLostFail, or with NackRepublishes negative, it fails with ErrNacked
// at once. Caller must hold p.mu.
func (p *Publisher) nackedLocked(c *Confirmation) {
	c.nacks++
	c.suspect, c.deaths = false, 0 // the broker answered it: it did not close the channel
	limit := p.opts.NackRepublishes
	switch {
	case p.opts.OnConfirmLost == ConfirmLostFail || limit < 0:
		p.retireLocked(c, ErrNacked)
	case c.countedNacks() > limit:
		p.retireLocked(c, pubNackedErr(c, nil))
	case c.ctx.Err() != nil:
		p.retireLocked(c, pubNackedErr(c, c.ctx.Err()))
	default:
		p.parkLocked(c)
	}
}

// parkLocked takes c, just nacked, out of the sequence until its backoff
// ends; then it joins the sequence again at the back, for the writer of
// whichever channel is live by then. Its context still bounds it (expire),
// and Close takes it like any unsettled message. Caller must hold p.mu.
func (p *Publisher) parkLocked(c *Confirmation) {
	p.led.remove(c)
	c.nackedBy = c.pc
	c.pc, c.nackedLast, c.parked = nil, true, true
	c.taker.Store(nil)
	if p.led.parked == nil {
		p.led.parked = make(map[*Confirmation]struct{})
	}
	p.led.parked[c] = struct{}{}
	c.parkGen++
	gen := c.parkGen
	t := time.AfterFunc(p.nackBackoff(c.countedNacks()), func() { p.unpark(c, gen) })
	c.stopPark = t.Stop
}

// unpark puts c back in the sequence once the backoff of its park gen has
// ended, unless it settled meanwhile, and wakes the writer. A timer that
// fired while an early release held p.mu (too late for stopPark) finds a
// later park, or none, and does nothing: it must not cut the next backoff.
func (p *Publisher) unpark(c *Confirmation, gen uint64) {
	p.mu.Lock()
	if !c.parked || c.parkGen != gen || c.settled || p.shut {
		p.mu.Unlock()
		return
	}
	p.unparkLocked(c)
	if p.cur != nil {
		p.kickLocked(p.cur)
	}
	p.mu.Unlock()
}

// unparkLocked puts parked c back at the back of the sequence. Caller must
// hold p.mu.
func (p *Publisher) unparkLocked(c *Confirmation) {
	p.led.remove(c)
	c.stopPark, c.nackedBy = nil, nil
	p.led.push(c)
}

// nackBackoff returns the wait before the nth republication of a nacked
// message.
func (p *Publisher) nackBackoff(n int) time.Duration {
	d := p.opts.nackBackoff
	if d == 0 {
		d = pubNackBackoff
	}
	for ; n > 1 && d < pubNackBackoffMax; n-- {
		d *= 2
	}
	return min(d, pubNackBackoffMax)
}

// pubNackedErr is the error of a nacked message that will not be republished:
// past the limit (cause nil) or because its context ended (cause).
func pubNackedErr(c *Confirmation, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w %d time(s), the limit (NackRepublishes)", ErrNacked, c.nacks)
	}
	return fmt.Errorf("%w %d time(s), then its context ended before it was republished: %w", ErrNacked, c.nacks, cause)
}
