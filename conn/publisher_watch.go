package conn

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// watch is pc's watcher: it settles messages as confirms arrive, matches
// returns to them, and when the channel ends carries the unconfirmed ones
// over (or fails them) and, if only the channel died, reopens it.
func (p *Publisher) watch(pc *publisherChannel) {
	defer p.exited()
	var returned map[string]amqp.Return
	confirms, returns := pc.confirms, pc.returns
	batch := make([]amqp.Confirmation, 0, cap(confirms))
	settled := make([]*Confirmation, 0, cap(confirms))
	for confirms != nil {
		select {
		case cf, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			// Take what else has arrived, to settle it under one lock.
			batch = append(batch[:0], cf)
			for more := true; more && len(batch) < cap(batch); {
				select {
				case cf, ok := <-confirms:
					if !ok {
						confirms, more = nil, false
						break
					}
					batch = append(batch, cf)
				default:
					more = false
				}
			}
			// RabbitMQ sends a mandatory message's basic.return before its
			// basic.ack, and amqp091-go hands the return over before it
			// reads on, so any return for these messages is buffered by now.
			for more := returns != nil; more; {
				select {
				case r, ok := <-returns:
					if !ok {
						returns, more = nil, false
						break
					}
					returned = pubAddReturn(returned, r)
				default:
					more = false
				}
			}
			settled = p.confirm(pc, batch, returned, settled[:0])
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			returned = pubAddReturn(returned, r)
		}
	}
	// amqp091-go sends the close reason before it closes the listeners.
	var reason error
	if e := <-pc.closes; e != nil {
		reason = e
	}
	if channelOnly := p.end(pc, reason); channelOnly {
		if p.warnRate.due(time.Now()) {
			p.s.log.Warn("warren: the broker closed a publisher channel; reopening it",
				"publisher", p.opts.Name, "err", reason)
		}
		p.reopen(pc)
	}
}

func pubAddReturn(m map[string]amqp.Return, r amqp.Return) map[string]amqp.Return {
	if m == nil {
		m = make(map[string]amqp.Return)
	}
	m[r.MessageId] = r
	return m
}

// confirm settles the messages a batch of confirms names; settled is
// scratch space, returned for reuse.
func (p *Publisher) confirm(pc *publisherChannel, batch []amqp.Confirmation, returned map[string]amqp.Return,
	settled []*Confirmation) []*Confirmation {
	p.mu.Lock()
	for _, cf := range batch {
		c := pc.pending.take(cf.DeliveryTag) // nil if Close settled it already
		if c != nil {
			p.inflight--
		}
		settled = append(settled, c)
	}
	p.checkDrainedLocked()
	p.mu.Unlock()
	for i, c := range settled {
		if c == nil {
			continue
		}
		var err error
		if !batch[i].Ack {
			p.s.ctr.nacked.Add(1)
			err = ErrNacked
		} else {
			p.s.ctr.confirmed.Add(1)
			if r, ok := returned[c.msg.MessageId]; ok {
				delete(returned, c.msg.MessageId)
				p.s.ctr.returned.Add(1)
				err = &ReturnedError{Return: r}
			}
		}
		c.settle(err)
		settled[i] = nil
	}
	return settled
}

// end retires pc: no more publishes go to it, its unconfirmed and unwritten
// messages move to the retry queue or fail (pubSettleLost). It reports whether
// the broker closed only the channel, with the connection still open.
func (p *Publisher) end(pc *publisherChannel, reason error) (channelOnly bool) {
	channelOnly = reason != nil && !pc.conn.IsClosed()
	p.mu.Lock()
	pc.over = true
	if p.cur == pc {
		p.cur = nil
		p.installed = make(chan struct{})
	}
	written := pc.pending.drain(nil)
	unwritten := pc.queue.drain(nil)
	loss := pubSettleLost(written, unwritten, reason, channelOnly, p.opts.OnConfirmLost)
	p.inflight -= len(loss.failed)
	p.checkDrainedLocked()
	for _, c := range loss.retry {
		c.inRetry = true
		if c.ctx.Done() != nil {
			c := c
			c.stopExpire = context.AfterFunc(c.ctx, func() { p.expire(c) })
		}
	}
	p.retry = append(p.retry, loss.retry...)
	pubSortBySeq(p.retry)
	p.mu.Unlock()
	pc.cancel()
	close(pc.ended)
	for i, c := range loss.failed {
		c.settle(loss.errs[i])
	}
	return channelOnly
}

// expire fails a message whose context ended while it waited for a channel.
func (p *Publisher) expire(c *Confirmation) {
	p.mu.Lock()
	if !c.inRetry {
		p.mu.Unlock()
		return
	}
	c.inRetry, c.stopExpire = false, nil
	for i, r := range p.retry {
		if r == c {
			copy(p.retry[i:], p.retry[i+1:])
			p.retry[len(p.retry)-1] = nil
			p.retry = p.retry[:len(p.retry)-1]
			break
		}
	}
	p.inflight--
	p.checkDrainedLocked()
	p.mu.Unlock()
	c.settle(pubExpiredError(c))
}

// reopen opens a new channel on the connection of old, which the broker
// closed alone, with the supervisor's backoff; it stops when the connection
// is lost (the next Up takes over) or the publisher closes.
func (p *Publisher) reopen(old *publisherChannel) {
	sched, err := reconnect.NewSchedule(p.s.opts.Reconnect, nil)
	if err != nil {
		return // validated by New
	}
	for {
		d, err := sched.Next()
		if err != nil {
			p.s.log.Error("warren: publisher gave up reopening its channel; it resumes on the next connection",
				"publisher", p.opts.Name, "err", err)
			return
		}
		if reconnect.Wait(old.connCtx, d, nil) != nil || old.conn.IsClosed() {
			return
		}
		pc, err := p.open(old.conn, old.connCtx, old.gen)
		if err != nil {
			if p.warnRate.due(time.Now()) {
				p.s.log.Warn("warren: publisher could not reopen its channel", "publisher", p.opts.Name, "err", err)
			}
			continue
		}
		if !p.install(pc) {
			_ = pc.ch.Close()
		}
		return
	}
}
