package main

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// Pacing bounds: the pacer wakes at most every demoMinTick (a high rate
// publishes several messages per tick) and at least every demoMaxTick.
const (
	demoMinTick = 5 * time.Millisecond
	demoMaxTick = 100 * time.Millisecond
	// demoMaxLag is how far behind the pacer may fall (while a publish waits
	// out an outage) before it gives up on the missed messages instead of
	// bursting them: a demo publishes at a steady rate, not in catch-up
	// floods.
	demoMaxLag = 200 * time.Millisecond
)

// demoPending is a message handed to the publisher, waiting for its outcome.
type demoPending struct {
	seq int
	c   *conn.Confirmation
}

// demoTraffic publishes at a steady rate and records every outcome and every
// delivery in the ledger.
type demoTraffic struct {
	pub   *conn.Publisher
	queue string
	rate  int
	led   *demoLedger
	// rejected counts PublishAsync calls that failed before the message
	// was accepted (nothing to account for: it was never published).
	rejected atomic.Int64
	// lastReject is the last such error, for the log.
	lastReject atomic.Pointer[error]
}

// demoPacerTick is how often the pacer wakes for rate messages per second.
func demoPacerTick(rate int) time.Duration {
	return demoClamp(time.Second/time.Duration(rate), demoMinTick, demoMaxTick)
}

// demoDue returns how many messages to publish now, elapsed after the pacer
// started, with sent already counted (published or skipped), and how many
// to skip because the pacer fell more than demoMaxLag behind.
func demoDue(elapsed time.Duration, rate, sent int) (publish, skip int) {
	want := int(elapsed.Seconds()*float64(rate)) - sent
	limit := max(1, int(demoMaxLag.Seconds()*float64(rate)))
	if want > limit {
		return limit, want - limit
	}
	return max(want, 0), 0
}

// publishLoop publishes until stop is closed, handing every accepted message
// to out. msgCtx bounds each message's life, republication included, so it
// must outlive publishing: it ends only when the demo gives up on settling.
func (tr *demoTraffic) publishLoop(msgCtx context.Context, stop <-chan struct{}, out chan<- demoPending) {
	ticker := time.NewTicker(demoPacerTick(tr.rate))
	defer ticker.Stop()
	begin := time.Now()
	sent, seq := 0, 0
	for {
		select {
		case <-stop:
			return
		case <-msgCtx.Done():
			return
		case <-ticker.C:
		}
		n, skip := demoDue(time.Since(begin), tr.rate, sent)
		sent += skip
		for i := 0; i < n; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, err := tr.pub.PublishAsync(msgCtx, "", tr.queue, amqp.Publishing{
				MessageId:    demoMsgID(seq),
				DeliveryMode: amqp.Persistent, // survives stop_app in a durable queue
				ContentType:  "text/plain",
				Timestamp:    time.Now(),
				Body:         []byte("warren demo message " + strconv.Itoa(seq)),
			})
			sent++
			if err != nil {
				if msgCtx.Err() != nil || errors.Is(err, conn.ErrClosed) {
					return
				}
				tr.rejected.Add(1)
				tr.lastReject.Store(&err)
				continue
			}
			tr.led.publish(seq)
			select {
			case out <- demoPending{seq: seq, c: c}:
			case <-msgCtx.Done():
				return
			}
			seq++
		}
	}
}

// settleLoop records each message's outcome, in publish order, until in is
// closed and drained. Every Confirmation settles (Publisher.Close fails the
// stragglers), so waiting on each in turn ends; abort bounds it anyway.
func (tr *demoTraffic) settleLoop(abort context.Context, in <-chan demoPending) {
	for p := range in {
		select {
		case <-p.c.Done():
			tr.led.settle(p.seq, p.c.Wait(abort))
		case <-abort.Done():
			return
		}
	}
}

// handle is the consumer's handler: record the delivery and acknowledge it.
func (tr *demoTraffic) handle(_ context.Context, d amqp.Delivery) error {
	tr.led.receive(d.MessageId)
	return nil
}
