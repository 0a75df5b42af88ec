package conn

import (
	"context"
	"fmt"
	"sort"

	amqp "github.com/rabbitmq/amqp091-go"
)

// publisherChannel is one incarnation of a publisher's channel: opened in
// confirm mode on one connection, it lives until the channel or the
// connection dies. Delivery tags count per incarnation, so the
// tag-to-message map (pending) lives here too. Two goroutines serve it:
// the writer and the watcher.
type publisherChannel struct {
	ch      *amqp.Channel
	conn    *amqp.Connection
	gen     uint64          // the Up it belongs to
	connCtx context.Context // ends when the connection is lost
	ctx     context.Context // ends with the incarnation
	cancel  context.CancelFunc

	// amqp091-go drops a notification its listener does not take within
	// 5 s. confirms and returns hold MaxInFlight each, more than can be
	// outstanding, and the watcher drains them without blocking. returns is
	// nil unless the publisher is Mandatory.
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closes   chan *amqp.Error

	wake  chan struct{} // capacity 1: the queue has something
	ended chan struct{} // closed once its messages are settled or carried over

	// Guarded by Publisher.mu.
	queue   publisherRing // accepted, not yet written, in publish order
	pending publisherRing // written, awaiting their confirm, in tag order
	over    bool
}

// kick wakes the writer without blocking.
func (pc *publisherChannel) kick() {
	select {
	case pc.wake <- struct{}{}:
	default: // a wake-up is pending; the writer drains the whole queue
	}
}

// up is the ready hook: it opens the channel on a new connection and
// installs it, carrying over what the last channel left unconfirmed.
func (p *Publisher) up(ctx context.Context, c *amqp.Connection) error {
	p.upMu.Lock()
	defer p.upMu.Unlock()
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return nil
	}
	// A new Up fences off reopens still running on the old connection.
	p.gen++
	gen := p.gen
	if p.connCancel != nil {
		p.connCancel()
	}
	connCtx, cancel := context.WithCancel(p.ctx)
	p.connCancel = cancel
	old := p.cur
	p.mu.Unlock()
	if old != nil {
		// The old channel died with its connection; wait for its watcher to
		// move its unconfirmed messages to the retry queue, so that they go
		// out first and in order.
		select {
		case <-old.ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.IsClosed() {
		// A late Up (from AddHook) on a connection already replaced.
		return fmt.Errorf("warren: publisher %s: %w", p.opts.Name, amqp.ErrClosed)
	}
	pc, err := p.open(c, connCtx, gen)
	if err != nil {
		return err
	}
	if !p.install(pc) {
		_ = pc.ch.Close()
	}
	return nil
}

// open opens a channel on c and puts it in confirm mode; publishes are only
// accepted once this has succeeded.
func (p *Publisher) open(c *amqp.Connection, connCtx context.Context, gen uint64) (*publisherChannel, error) {
	ch, err := c.Channel()
	if err != nil {
		return nil, fmt.Errorf("warren: publisher %s: open channel: %w", p.opts.Name, err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("warren: publisher %s: confirm mode: %w", p.opts.Name, err)
	}
	pc := &publisherChannel{
		ch:       ch,
		conn:     c,
		gen:      gen,
		connCtx:  connCtx,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, p.opts.MaxInFlight)),
		closes:   closes,
		wake:     make(chan struct{}, 1),
		ended:    make(chan struct{}),
		queue:    newPublisherRing(p.opts.MaxInFlight),
		pending:  newPublisherRing(p.opts.MaxInFlight),
	}
	if p.opts.Mandatory {
		// Only mandatory messages come back: RabbitMQ does not support
		// the immediate flag.
		pc.returns = ch.NotifyReturn(make(chan amqp.Return, p.opts.MaxInFlight))
	}
	pc.ctx, pc.cancel = context.WithCancel(connCtx)
	return pc, nil
}

// install makes pc the channel that accepts publishes, queues the messages
// waiting for a channel ahead of any new one, and starts pc's goroutines. It
// reports false, leaving pc unused, if the publisher is shut or a newer Up
// has started.
func (p *Publisher) install(pc *publisherChannel) bool {
	p.mu.Lock()
	if p.shut || pc.gen != p.gen {
		p.mu.Unlock()
		pc.cancel()
		return false
	}
	var expired []*Confirmation
	republished := 0
	for i, c := range p.retry {
		p.retry[i] = nil
		c.inRetry = false
		if c.stopExpire != nil {
			c.stopExpire()
			c.stopExpire = nil
		}
		if c.ctx.Err() != nil {
			expired = append(expired, c)
			continue
		}
		if c.written {
			republished++
		}
		pc.queue.push(c)
	}
	p.retry = p.retry[:0]
	p.inflight -= len(expired)
	p.checkDrainedLocked()
	queued := pc.queue.len()
	p.cur = pc
	close(p.installed)
	p.startedLocked(2)
	p.mu.Unlock()

	go p.watch(pc)
	go p.write(pc)
	for _, c := range expired {
		c.settle(pubExpiredError(c))
	}
	if queued > 0 {
		pc.kick()
	}
	if republished > 0 {
		p.s.ctr.republished.Add(uint64(republished))
		p.s.emit(Event{Kind: EventPublisherRepublished, Attempt: republished})
	}
	return true
}

// pubExpiredError is the error of a message whose own context ended before it
// could be (re)published.
func pubExpiredError(c *Confirmation) error {
	if c.written {
		return pubConfirmLost(c.ctx.Err())
	}
	return c.ctx.Err()
}

// writeBatch bounds how many messages the writer takes from the queue under
// one lock.
const writeBatch = 64

// write is pc's writer: the only goroutine that publishes on pc.ch, so the
// delivery tags of the next writes are known before them and recorded before
// their confirms can arrive.
func (p *Publisher) write(pc *publisherChannel) {
	defer p.exited()
	batch := make([]*Confirmation, 0, writeBatch)
	before := make([]bool, 0, writeBatch) // each message's written flag before this write
	var expired []*Confirmation
	for {
		select {
		case <-pc.wake:
		case <-pc.ctx.Done():
			return
		}
		for {
			// A blocked broker stops reading the socket: a write now would
			// stall until the alarm clears, holding the queue behind it
			// for nothing.
			if err := p.s.waitUnblocked(pc.ctx); err != nil {
				return
			}
			batch, before, expired = batch[:0], before[:0], expired[:0]
			p.mu.Lock()
			if pc.over {
				p.mu.Unlock()
				return
			}
			n := min(pc.queue.len(), writeBatch)
			tag := pc.ch.GetNextPublishSeqNo()
			for k := 0; k < n; k++ {
				c := pc.queue.pop()
				if c.ctx.Err() != nil {
					expired = append(expired, c)
					continue
				}
				batch = append(batch, c)
				before = append(before, c.written)
				c.tag, c.written = tag, true
				tag++
				pc.pending.push(c)
			}
			p.inflight -= len(expired)
			p.checkDrainedLocked()
			p.mu.Unlock()
			for _, c := range expired {
				c.settle(pubExpiredError(c))
			}
			if n == 0 {
				break
			}
			for i, c := range batch {
				if pc.ctx.Err() != nil {
					// Ended or closed meanwhile: the rest of the batch was
					// carried over or settled without us.
					return
				}
				// Counted before the write: the confirm may be counted
				// before Publish returns.
				p.s.ctr.published.Add(1)
				if err := pc.ch.Publish(c.exchange, c.key, p.opts.Mandatory, false, c.msg); err != nil {
					p.s.ctr.published.Add(^uint64(0))
					p.unwrite(pc, batch[i:], before[i:])
					return
				}
			}
		}
	}
}

// unwrite puts back, at the front of the queue, the messages of a batch that
// did not go out because the channel or the connection failed; its watcher
// settles the incarnation.
func (p *Publisher) unwrite(pc *publisherChannel, batch []*Confirmation, before []bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc.over {
		return // end took them from pending already
	}
	for i := len(batch) - 1; i >= 0; i-- {
		if pc.pending.back() != batch[i] {
			return
		}
		pc.pending.popBack()
		batch[i].written = before[i]
		pc.queue.pushFront(batch[i])
	}
}

// pubSortBySeq orders messages by publish order.
func pubSortBySeq(cs []*Confirmation) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })
}
