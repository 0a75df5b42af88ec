package conn

import (
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// owedProber sends the replies-owed rule's probe on one connection (see
// heartbeat.Monitor.SetOwedProbe): a channel of its own, opened by the
// first probe (the broker's channel.open-ok is that probe's answer), then a
// basic.qos on it for each later one. Both are answered by the broker's
// channel process without waiting on any queue, so a broker whose queues
// hold confirms (a quorum queue electing a leader) still answers within
// milliseconds, while a partitioned one answers nothing.
//
// The probe channel has no consumer, so its prefetch setting changes
// nothing. A connection that never holds replies for a third of the owed
// limit never opens it.
type owedProber struct {
	conn *amqp.Connection
	work *workGroup
	mu   sync.Mutex // held by the probe under way; TryLock skips a second
	ch   *amqp.Channel
}

// probe starts a probe on its own goroutine, counted in work so that Close
// waits for it; it returns at once. While a probe is still unanswered a
// second one is pointless, and is skipped. The goroutine ends when the
// broker answers or the connection ends, whichever comes first.
func (p *owedProber) probe() {
	if !p.mu.TryLock() {
		return
	}
	p.work.Go(func() {
		defer p.mu.Unlock()
		if p.ch == nil || p.ch.IsClosed() {
			ch, err := p.conn.Channel()
			if err == nil {
				p.ch = ch
			}
			return
		}
		_ = p.ch.Qos(0, 0, false)
	})
}
