package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// errBeingHandled is the error of a copy of an order that arrived while
// another copy of it was being handled.
var errBeingHandled = errors.New("another copy of this order is being handled")

// settleGrace is how long handle keeps the id of an order it processed:
// the consumer acknowledges it, and its dedupe window learns the id, only
// after handle has returned, and a copy handed to another handler goroutine
// in between would be processed again. Acknowledging takes microseconds to
// milliseconds; five seconds leave room for a slow socket.
const settleGrace = 5 * time.Second

// orders handles the orders the consumer receives. Duplicates (a publish
// republished after a lost confirm, a client's retry with the same
// Idempotency-Key, a redelivery after a lost ack) are dropped in three
// places:
//
//   - the consumer's dedupe window (conn.DedupeOptions) acknowledges a copy
//     whose id was acknowledged already, without calling handle;
//   - handle acknowledges without processing a copy of an order it
//     processed less than settleGrace ago (whose ack may still be under way,
//     so the window may not know it yet);
//   - handle sends a copy that arrives while another copy is still being
//     processed back through the broker's retry queue; when it returns, the
//     window drops it.
//
// All of this lives in this process: a copy delivered after a restart, or to
// another instance, is processed again. Business logic that must never run
// twice needs its own check where it writes (a unique key in its database).
type orders struct {
	log *slog.Logger
	// process is the business logic; it must be safe for concurrent use.
	process func(ctx context.Context, id string, body []byte) error
	stats   *serviceStats

	mu   sync.Mutex
	ids  map[string]time.Time // being processed (zero), or processed until then
	done []doneID             // processed ids in order, for expiry
}

type doneID struct {
	id    string
	until time.Time
}

func newOrders(log *slog.Logger, stats *serviceStats) *orders {
	o := &orders{log: log, stats: stats, ids: make(map[string]time.Time)}
	o.process = o.logOrder
	return o
}

// handle is the consumer's handler. nil acknowledges the delivery; an error
// retries it later through the broker (the consumer's default, RetryBackoff).
func (o *orders) handle(ctx context.Context, d amqp.Delivery) error {
	id := d.MessageId
	if id != "" {
		switch o.claim(id) {
		case claimBusy:
			o.stats.busyDuplicates.Add(1)
			return conn.RetryAfter(time.Second, errBeingHandled)
		case claimDone:
			o.stats.lateDuplicates.Add(1)
			return nil
		}
	}
	err := o.process(ctx, id, d.Body)
	if id != "" {
		o.release(id, err == nil)
	}
	if err != nil {
		o.log.Warn("order failed; it will be retried", "idempotency_key", id, "err", err)
		return err
	}
	o.stats.consumed.Add(1)
	return nil
}

type claimResult int

const (
	claimed claimResult = iota
	claimBusy
	claimDone
)

func (o *orders) claim(id string) claimResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	for len(o.done) > 0 && now.After(o.done[0].until) {
		if until, ok := o.ids[o.done[0].id]; ok && until.Equal(o.done[0].until) {
			delete(o.ids, o.done[0].id)
		}
		o.done = o.done[1:]
	}
	if until, ok := o.ids[id]; ok {
		if until.IsZero() {
			return claimBusy
		}
		return claimDone
	}
	o.ids[id] = time.Time{}
	return claimed
}

// release ends a claim: a processed id stays for settleGrace, a failed one
// is forgotten so that its retry is processed.
func (o *orders) release(id string, processed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !processed {
		delete(o.ids, id)
		return
	}
	until := time.Now().Add(settleGrace)
	o.ids[id] = until
	o.done = append(o.done, doneID{id: id, until: until})
}

// logOrder stands for the business logic. It logs at Debug: one line per
// message at Info would drown the log at any real rate.
func (o *orders) logOrder(_ context.Context, id string, body []byte) error {
	o.log.Debug("order processed", "idempotency_key", id, "bytes", len(body))
	return nil
}
