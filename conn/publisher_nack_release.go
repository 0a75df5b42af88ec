package conn

import (
	"math/bits"
	"sort"
)

// A nacked message waits out its backoff (parkLocked) unless the publisher
// learns sooner that the cause of its nack has passed. Two signs count, each
// at most once per message, and the nack a sign releases is forgiven: it
// counts neither against NackRepublishes nor toward a longer backoff. So an
// early release can only add attempts to a message's schedule, never take
// waits away from it: a queue that keeps nacking (x-overflow reject-publish,
// full) still gives each message its whole schedule before ErrNacked.
//
// Why they matter: during a quorum queue's failover the broker nacks while
// it elects a leader, and on RabbitMQ 3.10 a channel that asked the dead
// leader's node keeps nacking after the election too, until the publisher
// replaces it. A message that waited out its backoff after the election
// made the confirm gap 1.75 s against a 0.2 s election (0.25 + 0.5 + 1 s),
// and parked messages hold window slots, so new publishes waited behind
// them.
type pubForgiven uint8

const (
	// forgivenRecycle: the nack came from a channel later replaced for
	// nacking everything (unparkNackedBy); the channel was at fault.
	forgivenRecycle pubForgiven = 1 << iota
	// forgivenAck: the live channel acked a message written after this one
	// (releaseOnAckLocked); the broker takes messages again.
	forgivenAck
)

// countedNacks is the nacks that count against NackRepublishes and set the
// backoff: all but the forgiven ones. Caller must hold p.mu.
func (c *Confirmation) countedNacks() int {
	// Each forgiven bit stands for one nack it answered.
	return max(c.nacks-bits.OnesCount8(uint8(c.forgiven)), 0)
}

// releaseParkedLocked puts back at once, in publish order, the parked
// messages that may still be forgiven kind and that match, forgiving each
// one's last nack, and wakes the writer. Caller must hold p.mu.
func (p *Publisher) releaseParkedLocked(kind pubForgiven, match func(*Confirmation) bool) {
	if p.shut || len(p.led.parked) == 0 {
		return
	}
	var back []*Confirmation
	for c := range p.led.parked {
		if c.forgiven&kind == 0 && !c.settled && match(c) {
			back = append(back, c)
		}
	}
	if len(back) == 0 {
		return
	}
	sort.Slice(back, func(i, j int) bool { return back[i].stamp < back[j].stamp })
	for _, c := range back {
		c.forgiven |= kind
		if c.stopPark != nil {
			c.stopPark()
		}
		p.unparkLocked(c)
	}
	if p.cur != nil {
		p.kickLocked(p.cur)
	}
}

// unparkNackedBy releases the messages parked after a nack from pc, a
// channel replaced because it nacked everything: those nacks were the
// channel's (RabbitMQ 3.10 keeps asking a dead quorum leader's node on it),
// not the queue's, and the new channel can take them now.
func (p *Publisher) unparkNackedBy(pc *pubChannel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseParkedLocked(forgivenRecycle, func(c *Confirmation) bool { return c.nackedBy == pc })
}

// releaseOnAckLocked releases the parked messages that pc, the live
// channel, has just shown the broker takes again: it acked tag, written
// after their nack. That is any tag when they were nacked on an earlier
// channel, and a tag above their own when nacked on pc, since a channel's
// publishes reach their queues in order; an ack of a message written before
// theirs (a quorum queue confirms after its log commit, a refusal at once)
// says nothing. Caller must hold p.mu.
func (p *Publisher) releaseOnAckLocked(pc *pubChannel, tag uint64) {
	if pc != p.cur {
		return
	}
	p.releaseParkedLocked(forgivenAck, func(c *Confirmation) bool {
		return c.nackedBy != pc || tag > c.tag
	})
}
