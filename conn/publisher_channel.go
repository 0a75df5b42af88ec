package conn

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// pubChannel is one incarnation of a publisher's channel: opened in confirm
// mode on one connection, it lives until the channel or the connection dies.
// Its delivery tags start at 1; which message has which tag is in the
// ledger. Two goroutines serve it: the reader of its confirms and returns
// (amqp091-go drops a notification its listener does not take within 5 s,
// while a write may block on TCP backpressure), and the writer, which runs
// only while there is something to write: an idle publisher holds no writer
// goroutine.
type pubChannel struct {
	ch       *amqp.Channel
	conn     *amqp.Connection
	connGone <-chan *amqp.Error // closed when conn shuts down
	user     string             // the user conn authenticated as, "" if unknown
	frameMax int

	// confirms and returns hold MaxInFlight each, more than can be
	// outstanding. returns is nil unless the publisher is Mandatory.
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closes   chan *amqp.Error
	returned map[uint64]amqp.Return // by sequence; the reader's own

	ctx    context.Context
	cancel context.CancelFunc // ends ctx when the incarnation ends
	over   bool               // guarded by Publisher.mu
	// writing is set while a writer goroutine runs; guarded by
	// Publisher.mu, under which the writer also decides to exit, so a
	// message pushed after that decision starts a new writer.
	writing bool

	// nackedSince is when the current run of nacks without an ack began
	// (zero after an ack); recycling is set once the channel is being
	// replaced for it (see nackRecycleAfter). Guarded by Publisher.mu.
	nackedSince time.Time
	recycling   bool
}

// kickLocked starts pc's writer unless one runs (it looks at the whole
// ledger before it exits) or pc has ended. Caller must hold p.mu.
func (p *Publisher) kickLocked(pc *pubChannel) {
	if pc.writing || pc.over {
		return
	}
	pc.writing = true
	p.goWork(func() { p.write(pc) })
}

// admits checks what only the connection can tell about c: that its
// properties fit in a frame and that its UserId is the connection's user (the
// broker closes the channel on any other).
func (pc *pubChannel) admits(c *Confirmation) error {
	if n := c.size + pubHeaderOverhead; pc.frameMax > 0 && n > pc.frameMax {
		return pubInvalid("Headers", "make a content header of up to %d bytes, more than the frame size %d", n, pc.frameMax)
	}
	if u := c.msg.UserId; u != "" && pc.user != "" && u != pc.user {
		return pubInvalid("UserId", "%q is not the connection's user %q", u, pc.user)
	}
	return nil
}

// pubConnUser returns the user c authenticated as, if it did with a password.
func pubConnUser(c *amqp.Connection) string {
	for _, a := range c.Config.SASL {
		switch a := a.(type) {
		case *amqp.PlainAuth:
			return a.Username
		case *amqp.AMQPlainAuth:
			return a.Username
		}
	}
	return ""
}

// up is the ready hook: it opens the channel on a new connection and
// installs it. Ups never overlap (the supervisor runs them on its
// goroutine).
func (p *Publisher) up(_ context.Context, c *amqp.Connection) error {
	if p.ctx.Err() != nil {
		return nil // closed
	}
	pc, err := p.open(c, c.NotifyClose(make(chan *amqp.Error, 1)))
	if err != nil {
		return err
	}
	p.install(pc, false)
	return nil
}

// open opens a channel on c and puts it in confirm mode; publishes are only
// accepted once this has succeeded.
func (p *Publisher) open(c *amqp.Connection, connGone <-chan *amqp.Error) (*pubChannel, error) {
	ch, err := c.Channel()
	if err != nil {
		return nil, fmt.Errorf("warren: publisher %s: open channel: %w", p.opts.Name, err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("warren: publisher %s: confirm mode: %w", p.opts.Name, err)
	}
	pc := &pubChannel{
		ch: ch, conn: c, connGone: connGone, user: pubConnUser(c), frameMax: c.Config.FrameSize,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, p.opts.MaxInFlight)),
		closes:   closes,
	}
	if p.opts.Mandatory {
		// Only mandatory messages come back: RabbitMQ does not support
		// the immediate flag.
		pc.returns = ch.NotifyReturn(make(chan amqp.Return, p.opts.MaxInFlight))
		pc.returned = make(map[uint64]amqp.Return)
	}
	pc.ctx, pc.cancel = context.WithCancel(context.Background())
	return pc, nil
}

// install makes pc the channel that accepts publishes and starts its
// goroutines. A channel still installed when Up opens pc belongs to a
// connection that is gone: it is retired first, so that its messages go out
// on pc, in order. pc is closed unused if the publisher is shut, if its
// connection is gone, or if it was reopened and another channel was
// installed meanwhile.
func (p *Publisher) install(pc *pubChannel, reopened bool) {
	p.mu.Lock()
	if p.shut || pc.conn.IsClosed() || (reopened && p.cur != nil) {
		p.mu.Unlock()
		pc.cancel()
		p.goWork(func() { _ = pc.ch.Close() })
		return
	}
	if old := p.cur; old != nil {
		p.endLocked(old, amqp.ErrClosed)
	}
	p.cur = pc
	close(p.installed)
	p.goWork(func() { p.read(pc) })
	p.kickLocked(pc) // messages carried over from the last channel go first
	p.mu.Unlock()
}

// goWork runs f on a goroutine counted by the publisher and the supervisor,
// whose Closes wait for it.
func (p *Publisher) goWork(f func()) {
	p.work.add()
	p.s.work.Go(func() {
		defer p.work.done()
		f()
	})
}

// writeBatch bounds how many messages the writer takes under one lock.
const writeBatch = 64

// write is pc's writer: the only goroutine that publishes on pc.ch, so the
// delivery tags of its writes are known, and recorded in the ledger, before
// their confirms can arrive. It runs until it finds nothing to write, and
// decides that under p.mu: kickLocked starts the next one.
func (p *Publisher) write(pc *pubChannel) {
	// The batch lives on this goroutine's stack, which goes when the writer
	// does: an idle publisher holds none (issue 18).
	var buf [writeBatch]*Confirmation
	for {
		// A blocked broker stops reading the socket: a write now would
		// stall until the alarm clears, holding the ledger behind it.
		if p.s.waitUnblocked(pc.ctx) != nil {
			return // pc ended; no writer starts on it again
		}
		p.mu.Lock()
		if pc.over {
			p.mu.Unlock()
			return
		}
		batch := p.takeWritableLocked(pc, buf[:0])
		if len(batch) == 0 {
			pc.writing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for i, c := range batch {
			if !c.taker.CompareAndSwap(pc, pubWrote) {
				p.giveBack(pc, batch[i+1:], false)
				continue
			}
			c.written.Store(true)
			// Counted before the write: the confirm may be counted
			// before Publish returns.
			p.s.ctr.published.Add(1)
			p.s.oweReply(pc.conn) // before the write: its confirm is owed
			if err := pc.ch.Publish(c.exchange, c.key, p.opts.Mandatory, false, c.msg); err != nil {
				// The channel or its connection is dying; the reader
				// retires it.
				p.s.ctr.published.Add(^uint64(0))
				p.giveBack(pc, batch[i:], true)
				return
			}
		}
	}
}

// takeWritableLocked moves the next messages of the ledger onto pc, with
// their delivery tags, and appends them to batch. A suspect message (one in
// flight when a channel died of a broker error) is written alone, with
// nothing else in flight: if the broker closes the channel again, it is the
// cause. Messages whose context ended, or that pc's connection refuses,
// settle here. Caller must hold p.mu.
func (p *Publisher) takeWritableLocked(pc *pubChannel, batch []*Confirmation) []*Confirmation {
	tag := pc.ch.GetNextPublishSeqNo()
	republished := 0
	for len(batch) < cap(batch) && p.led.sent < p.led.len() {
		if p.led.sent > 0 && p.led.at(0).suspect {
			break // a suspect is alone in flight
		}
		c := p.led.at(p.led.sent)
		if c.suspect && p.led.sent > 0 {
			break
		}
		if err := c.ctx.Err(); err != nil {
			p.retireLocked(c, pubExpired(c))
			continue
		}
		if err := pc.admits(c); err != nil {
			p.retireLocked(c, fmt.Errorf("warren: publisher %s: %w", p.opts.Name, err))
			continue
		}
		if c.written.Load() {
			republished++
		}
		c.pc, c.tag, c.nackedLast = pc, tag, false
		c.taker.Store(pc)
		tag++
		p.led.sent++
		batch = append(batch, c)
	}
	if republished > 0 {
		p.s.ctr.republished.Add(uint64(republished))
		p.s.emit(Event{Kind: EventPublisherRepublished, Attempt: republished})
	}
	return batch
}

// giveBack corrects the rest of a batch after one of its messages was not
// written: after an expiry the rest take one tag less (the channel numbers
// only what it is sent); after a failed write (failed) they go back to the
// writer of the next channel, as the last ones written on pc.
func (p *Publisher) giveBack(pc *pubChannel, rest []*Confirmation, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range rest {
		switch {
		case c.pc != pc || pc.over:
		case failed:
			c.pc = nil
			p.led.sent--
		default:
			c.tag--
		}
	}
}

// read is pc's reader: it settles messages as confirms arrive, matching
// returns to them by sequence number, and when the channel ends retires it
// and, if only the channel died, reopens it.
//
// An idle publisher parks here for good, so this frame is most of what its
// goroutine needs: small, it fits the runtime's smallest (2 KiB) stack,
// which a goroutine that once grew past it never returns to (the runtime
// shrinks a stack only while it uses under a quarter of itself, counting
// 800 bytes of guard). So the work lives in functions of their own, and only
// a Mandatory publisher pays for the select that also takes returns (an
// amqp.Return is some 300 bytes). 2 KiB less per idle publisher of a fleet
// (BENCHMARKS.md, issue 18).
func (p *Publisher) read(pc *pubChannel) {
	if pc.returns == nil {
		for cf := range pc.confirms {
			p.confirm(pc, cf)
		}
	} else {
		p.readWithReturns(pc)
	}
	p.readEnded(pc)
}

// readWithReturns is read's loop for a Mandatory publisher, whose returns
// come on a channel of their own.
func (p *Publisher) readWithReturns(pc *pubChannel) {
	confirms, returns := pc.confirms, pc.returns
	for confirms != nil {
		select {
		case cf, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			p.confirmAfterReturns(pc, cf)
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			pc.noteReturn(r)
		}
	}
}

// confirmAfterReturns settles the message cf names, after taking any return
// already buffered for it.
func (p *Publisher) confirmAfterReturns(pc *pubChannel, cf amqp.Confirmation) {
	// RabbitMQ sends a mandatory message's basic.return before its
	// basic.ack, and amqp091-go hands the return over before it reads on,
	// so any return for this message is buffered by now.
	for more := pc.returns != nil; more; {
		select {
		case r, ok := <-pc.returns:
			more = ok && pc.noteReturn(r)
		default:
			more = false
		}
	}
	p.confirm(pc, cf)
}

// readEnded retires pc once amqp091-go closed its listeners and, if only
// the channel died, reopens it.
func (p *Publisher) readEnded(pc *pubChannel) {
	// amqp091-go sends the close reason before it closes the listeners.
	var reason error
	if e := <-pc.closes; e != nil {
		reason = e
	}
	p.mu.Lock()
	ended := p.endLocked(pc, reason)
	p.mu.Unlock()
	if ended && reason != nil && !pc.conn.IsClosed() {
		if p.warnRate.due(time.Now()) {
			p.s.log.Warn("warren: the broker closed a publisher channel; reopening it",
				"publisher", p.opts.Name, "err", reason)
		}
		p.reopen(pc)
	}
}

// noteReturn records a basic.return by the sequence header the publisher
// stamped, which it removes: the caller never set it. It reports true.
func (pc *pubChannel) noteReturn(r amqp.Return) bool {
	if seq, ok := r.Headers[pubSeqHeader].(int64); ok {
		delete(r.Headers, pubSeqHeader)
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		pc.returned[uint64(seq)] = r
	}
	return true
}

// confirm settles the message a confirm names, and reports whether it was
// a suspect.
func (p *Publisher) confirm(pc *pubChannel, cf amqp.Confirmation) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.led.sentWith(cf.DeliveryTag)
	if pc.over || c == nil {
		return false // sent again on the next channel, or taken by Close
	}
	suspect := c.suspect
	r, returned := pc.returned[c.stamp]
	delete(pc.returned, c.stamp)
	if cf.Ack {
		pc.nackedSince = time.Time{}
	}
	switch {
	case !cf.Ack:
		p.s.ctr.nacked.Add(1)
		p.nackedLocked(c)
		p.noteNackLocked(pc)
	case returned:
		p.s.ctr.confirmed.Add(1)
		p.s.ctr.returned.Add(1)
		p.retireLocked(c, &ReturnedError{Return: r})
	default:
		p.s.ctr.confirmed.Add(1)
		p.retireLocked(c, nil)
	}
	if cf.Ack {
		p.releaseOnAckLocked(pc, cf.DeliveryTag)
	}
	if suspect {
		p.kickLocked(pc) // a suspect was alone in flight: write on
	}
	return suspect
}

// reopen opens a new channel on the connection of old, which the broker
// closed alone. It retries with the supervisor's backoff, capped but never
// giving up while the connection lives (a Ready supervisor must not be left
// without a channel); it stops when the connection ends (the next Up takes
// over) or the publisher is shut.
func (p *Publisher) reopen(old *pubChannel) {
	policy := p.s.opts.Reconnect
	policy.MaxAttempts, policy.MaxElapsed = 0, 0
	sched, err := reconnect.NewSchedule(policy, nil)
	if err != nil {
		return // validated by New
	}
	for {
		d, err := sched.Next()
		if err != nil {
			return // cannot happen without MaxAttempts and MaxElapsed
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-old.connGone:
			t.Stop()
			return
		case <-p.ctx.Done():
			t.Stop()
			return
		}
		pc, err := p.open(old.conn, old.connGone)
		if err == nil {
			p.install(pc, true)
			return
		}
		if old.conn.IsClosed() {
			return
		}
		if p.warnRate.due(time.Now()) {
			p.s.log.Warn("warren: publisher could not reopen its channel", "publisher", p.opts.Name, "err", err)
		}
	}
}

// nackRecycleAfter is how long a channel may nack everything before the
// publisher replaces it: short, since the confirm gap of a failover grows
// by it. On RabbitMQ 3.10 a channel that first publishes to a quorum queue
// while the queue's record still names a leader on a dead node asks that
// node to register it, fails (badrpc nodedown), nacks, and asks the same
// node again for every later publish: it nacks that queue's messages until
// the dead node is back, while a fresh channel reads the record the new
// leader has updated. A channel opened before the election ends (0.2-0.8 s)
// is stuck the same way, so a failover may take several replacements: at
// 250 ms each, two of them were most of a 0.58 s gap against a 0.38 s
// election. A queue that rejects publishes (x-overflow reject-publish)
// costs a channel per nackRecycleAfter, a cheap open, and an early
// republication of what was parked, once per message (forgivenRecycle).
const nackRecycleAfter = 100 * time.Millisecond

// noteNackLocked counts a nack on pc and, once pc has nacked everything for
// nackRecycleAfter, closes it and opens a new channel on the same
// connection; messages written on pc and unconfirmed go out again on the
// new one (or fail, under ConfirmLostFail). Caller must hold p.mu.
func (p *Publisher) noteNackLocked(pc *pubChannel) {
	now := time.Now()
	if pc.nackedSince.IsZero() {
		pc.nackedSince = now
		return
	}
	if pc.recycling || now.Sub(pc.nackedSince) < nackRecycleAfter || p.shut {
		return
	}
	pc.recycling = true
	p.s.log.Warn("warren: the broker nacked every message on a publisher channel for a while; opening a new channel",
		"publisher", p.opts.Name, "for", now.Sub(pc.nackedSince).Round(time.Millisecond))
	p.goWork(func() {
		// Retired here, not by its reader, which may see the close
		// later (or never, past the close's bound): the new channel is
		// installed only once pc is no longer the current one. pc is
		// closed beside its replacement, not before it: on RabbitMQ 3.10
		// a channel stuck asking a dead node took 0.25-0.4 s to answer
		// the close, which the confirm gap grew by. Ended, pc's
		// late confirms are ignored, and what it had in flight goes out
		// on the new channel either way.
		p.mu.Lock()
		p.endLocked(pc, nil)
		p.mu.Unlock()
		p.goWork(func() { _ = closeChannel(context.Background(), pc.ch, p.s.opts.CloseTimeout) })
		p.reopen(pc)
		p.unparkNackedBy(pc)
	})
}
