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

// orders handles the orders the consumer receives. Duplicates (a publish
// republished after a lost confirm, a client's retry with the same
// Idempotency-Key, a redelivery after a lost ack) are dropped in two places:
//
//   - the consumer's dedupe window (conn.DedupeOptions) acknowledges a copy
//     whose id was handled already, without calling handle;
//   - handle itself sends a copy that arrives while another copy is still
//     being handled (which the window cannot know yet) back through the
//     broker's retry queue; when it returns, the window drops it.
//
// The window lives in this process: a copy delivered after a restart, or to
// another instance, is handled again. Business logic that must never run
// twice needs its own check where it writes (a unique key in its database).
type orders struct {
	log *slog.Logger
	// process is the business logic; it must be safe for concurrent use.
	process func(ctx context.Context, id string, body []byte) error
	stats   *serviceStats

	mu   sync.Mutex
	busy map[string]struct{} // ids being handled now
}

func newOrders(log *slog.Logger, stats *serviceStats) *orders {
	o := &orders{log: log, stats: stats, busy: make(map[string]struct{})}
	o.process = o.logOrder
	return o
}

// handle is the consumer's handler. nil acknowledges the delivery; an error
// retries it later through the broker (the consumer's default, RetryBackoff).
func (o *orders) handle(ctx context.Context, d amqp.Delivery) error {
	id := d.MessageId
	if id != "" {
		if !o.claim(id) {
			o.stats.busyDuplicates.Add(1)
			return conn.RetryAfter(time.Second, errBeingHandled)
		}
		defer o.unclaim(id)
	}
	if err := o.process(ctx, id, d.Body); err != nil {
		o.log.Warn("order failed; it will be retried", "idempotency_key", id, "err", err)
		return err
	}
	o.stats.consumed.Add(1)
	return nil
}

func (o *orders) claim(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.busy[id]; ok {
		return false
	}
	o.busy[id] = struct{}{}
	return true
}

func (o *orders) unclaim(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.busy, id)
}

// logOrder stands for the business logic. It logs at Debug: one line per
// message at Info would drown the log at any real rate.
func (o *orders) logOrder(_ context.Context, id string, body []byte) error {
	o.log.Debug("order processed", "idempotency_key", id, "bytes", len(body))
	return nil
}
