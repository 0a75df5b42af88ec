package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// retryAfter is the Retry-After of every 503: an outage that warren's
// reconnect ends (a forced close, a restart) is usually over within it.
const retryAfter = time.Second

// orderReply is an /orders response: a line of text, "confirmed KEY" or
// why not, and the Idempotency-Key header.
type orderReply struct {
	IdempotencyKey string
	Status         string // accepted, refused, unavailable or failed
	Error          string
}

// postOrder publishes the request body as an order and answers 202 only
// once the broker has confirmed it. It never holds a request for a
// connection that is not there: when the publishing connection is not
// Ready, blocked, or its window of unconfirmed publishes is full, it answers
// 503 with Retry-After at once. A request it does hold waits at most
// PUBLISH_TIMEOUT.
//
// Errors are answered in words for the client; the error itself, which may
// name hosts and internals, goes to the log only.
func (s *service) postOrder(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() {
		// Every wait below ends by PUBLISH_TIMEOUT; a request that takes
		// much longer means the process is starved of CPU.
		if took := time.Since(start); took > s.cfg.PublishTimeout+slowMargin {
			s.log.Warn("request slower than PUBLISH_TIMEOUT", "took", took, "publish_timeout", s.cfg.PublishTimeout)
		}
	}()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.reply(w, http.StatusMethodNotAllowed, orderReply{Status: "refused", Error: "use POST"})
		return
	}
	key, err := idempotencyKey(r.Header)
	if err != nil {
		s.reply(w, http.StatusBadRequest, orderReply{Status: "refused", Error: err.Error()})
		return
	}
	w.Header().Set(idempotencyHeader, key)
	// The body is read before a slot is taken: a slow client holds a
	// goroutine (bounded by HTTP_READ_TIMEOUT), never a publish slot.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.reply(w, http.StatusRequestEntityTooLarge, orderReply{IdempotencyKey: key, Status: "refused",
				Error: "the order is larger than " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes (MAX_BODY)"})
			return
		}
		s.reply(w, http.StatusBadRequest, orderReply{IdempotencyKey: key, Status: "refused",
			Error: "the request body could not be read to its end"})
		return
	}
	if why := s.health.brokerProblem(); why != "" {
		s.unavailable(w, key, "not taken: "+why)
		return
	}
	if !s.window.tryAcquire() {
		s.unavailable(w, key, "not taken: too many orders are waiting for RabbitMQ's confirm")
		return
	}
	defer s.window.release()

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
	defer cancel()
	conf, err := s.pub.PublishAsync(ctx, s.cfg.Queue, routingKey, amqp.Publishing{
		MessageId:    key,
		ContentType:  contentType(r),
		DeliveryMode: amqp.Persistent,
		Timestamp:    time.Now(),
		Body:         body,
	})
	if err == nil {
		err = conf.Wait(ctx)
	}
	switch {
	case err == nil:
		s.reply(w, http.StatusAccepted, orderReply{IdempotencyKey: key, Status: "accepted"})
	case r.Context().Err() != nil:
		// The client is gone: nobody reads an answer.
		s.log.Debug("order abandoned by its client", "idempotency_key", key, "err", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, conn.ErrClosed),
		errors.Is(err, conn.ErrConfirmLost), errors.Is(err, conn.ErrUnconfirmed):
		// The broker may have stored it: only a retry with the same key is
		// safe, and the consumer drops the second copy.
		s.log.Info("order not confirmed", "idempotency_key", key, "err", err)
		s.unavailable(w, key, "RabbitMQ did not confirm the order within "+s.cfg.PublishTimeout.String()+
			"; it may have been stored: retry with the same Idempotency-Key")
	case errors.Is(err, conn.ErrNacked), errors.Is(err, conn.ErrReturned):
		s.log.Error("order refused by the broker", "idempotency_key", key, "err", err)
		s.reply(w, http.StatusBadGateway, orderReply{IdempotencyKey: key, Status: "refused",
			Error: "RabbitMQ refused the order; it was not stored"})
	default:
		s.log.Error("order failed", "idempotency_key", key, "err", err)
		s.reply(w, http.StatusInternalServerError, orderReply{IdempotencyKey: key, Status: "failed",
			Error: "internal error; it is logged under this Idempotency-Key"})
	}
}

// slowMargin is how far past PUBLISH_TIMEOUT a request may run before it is
// logged as slow: answering and scheduling take a little time too.
const slowMargin = 250 * time.Millisecond

// routingKey is the binding of the orders queue to its exchange.
const routingKey = "created"

// contentType is the request's Content-Type if it has a sane one.
func contentType(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); ct != "" && len(ct) <= 128 {
		return ct
	}
	return "application/octet-stream"
}

// unavailable answers 503 with Retry-After.
func (s *service) unavailable(w http.ResponseWriter, key, why string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	s.reply(w, http.StatusServiceUnavailable, orderReply{IdempotencyKey: key, Status: "unavailable", Error: why})
}

// reply writes the answer, one line of text, and counts it.
func (s *service) reply(w http.ResponseWriter, code int, body orderReply) {
	s.stats.response(code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	line := body.Error
	if code == http.StatusAccepted {
		line = "confirmed " + body.IdempotencyKey
	}
	if _, err := io.WriteString(w, line+"\n"); err != nil {
		s.log.Debug("reply not written", "err", err)
	}
}
