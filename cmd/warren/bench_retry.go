package main

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// benchConfirmSource hands out a baseline's current confirm-mode channel.
type benchConfirmSource interface {
	// channel waits, bounded by ctx, until the client is publishable on an
	// incarnation (a connection, or an opening of it) newer than after (0
	// for any), and returns its channel and incarnation.
	channel(ctx context.Context, after uint64) (*amqp.Channel, uint64, error)
}

// benchInflight is one published, unsettled message of benchPublishWithRetry.
type benchInflight struct {
	id int
	dc *amqp.DeferredConfirmation
}

// benchPublishWithRetry is how the baselines publish in the loss scenario: the
// rule of amqp091-go's example client (Push retries until the broker
// confirms), with a window of cfg.Window instead of one message at a time. A
// message whose publish fails, or whose DeferredConfirmation settles without
// an ack (amqp091-go nacks every pending one when the channel dies, or, with
// Config.Recovery, when it is reset on reconnect), is published again once
// the client is up on a newer incarnation. Messages are released at cfg.Rate.
// It returns the confirmed set when all are confirmed or ctx ends (then with
// ctx's error).
func benchPublishWithRetry(ctx context.Context, src benchConfirmSource, cfg workerConfig) (benchBitset, error) {
	confirmed := newBenchBitset(cfg.N)
	pace := newBenchPacer(cfg.Rate)
	var (
		window    []benchInflight
		retry     []int
		next      int // next message never published
		settled   int
		failedGen uint64 // incarnation a publish failed on
	)
	for settled < cfg.N {
		// Settle what the broker answered, in publish order.
		for len(window) > 0 && benchIsDone(window[0].dc) {
			f := window[0]
			window = window[1:]
			if f.dc.Acked() {
				confirmed.set(f.id)
				settled++
			} else {
				retry = append(retry, f.id)
			}
		}
		// Publish while the window has room and a message is due.
		for len(window) < cfg.Window && (len(retry) > 0 || (next < cfg.N && pace.due(next))) {
			// Asked before every publish, not cached: with Config.Recovery
			// the channel object survives a loss, and a publish made while
			// amqp091-go is still re-selecting confirm mode gets a delivery
			// tag the broker never confirms.
			ch, gen, err := src.channel(ctx, failedGen)
			if err != nil {
				return confirmed, err
			}
			fromRetry := len(retry) > 0
			id := next
			if fromRetry {
				id = retry[0]
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", cfg.Queue, false, false, benchMessage(id, cfg.Size))
			if err != nil || dc == nil {
				failedGen = gen
				if ctx.Err() != nil {
					return confirmed, ctx.Err()
				}
				continue
			}
			if fromRetry {
				retry = retry[1:]
			} else {
				next++
			}
			window = append(window, benchInflight{id: id, dc: dc})
		}
		if settled == cfg.N {
			break
		}
		if err := benchWaitProgress(ctx, window, cfg.Window, len(retry) > 0, pace, next, cfg.N); err != nil {
			return confirmed, err
		}
	}
	return confirmed, nil
}

// benchWaitProgress waits until the oldest unsettled message settles or the next
// new message is due, bounded by ctx.
func benchWaitProgress(ctx context.Context, window []benchInflight, limit int, retrying bool, pace benchPacer, next, n int) error {
	var front <-chan struct{}
	if len(window) > 0 {
		front = window[0].dc.Done()
	}
	var due <-chan time.Time
	if len(window) < limit && !retrying && next < n {
		t := time.NewTimer(pace.until(next))
		defer t.Stop()
		due = t.C
	}
	select {
	case <-front:
	case <-due:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func benchIsDone(dc *amqp.DeferredConfirmation) bool {
	select {
	case <-dc.Done():
		return true
	default:
		return false
	}
}

// benchPacer releases message i at start + i/rate; a publisher that fell behind
// (during an outage) catches up at once.
type benchPacer struct {
	start    time.Time
	interval time.Duration
}

func newBenchPacer(rate int) benchPacer {
	p := benchPacer{start: time.Now()}
	if rate > 0 {
		p.interval = time.Second / time.Duration(rate)
	}
	return p
}

func (p benchPacer) until(i int) time.Duration {
	return time.Until(p.start.Add(time.Duration(i) * p.interval))
}

func (p benchPacer) due(i int) bool { return p.until(i) <= 0 }

// wait waits until message i is due, bounded by ctx.
func (p benchPacer) wait(ctx context.Context, i int) error {
	d := p.until(i)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
