package warrenprom

import (
	"context"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// PublishInterceptor returns the interceptor that counts every message a
// publisher settles by outcome and observes its latency from PublishAsync
// to the settlement. Add it to conn.PublisherOptions.Interceptors.
func (m *Metrics) PublishInterceptor() conn.PublishInterceptor {
	return func(ctx context.Context, pub *conn.OutgoingPublish) (context.Context, conn.PublishSettled) {
		start := time.Now()
		name := pub.Publisher
		return ctx, func(r conn.PublishResult) {
			outcome := r.Outcome.String()
			m.published.WithLabelValues(name, outcome).Inc()
			m.confirm.WithLabelValues(name, outcome).Observe(seconds(r.Settled.Sub(start)))
		}
	}
}

// HandlerMiddleware returns the middleware that counts every delivery a
// consumer handles by the outcome chosen for it and observes how long its
// handling and settlement took. Add it to conn.ConsumerOptions.Middleware.
func (m *Metrics) HandlerMiddleware() conn.HandlerMiddleware {
	return func(next conn.HandleFunc) conn.HandleFunc {
		return func(ctx context.Context, info conn.DeliveryInfo, d amqp.Delivery) conn.HandleResult {
			start := time.Now()
			r := next(ctx, info, d)
			outcome := strings.ToLower(r.Outcome.String())
			m.deliveries.WithLabelValues(info.Consumer, info.Queue, outcome).Inc()
			m.handling.WithLabelValues(info.Consumer, info.Queue, outcome).Observe(time.Since(start).Seconds())
			return r
		}
	}
}
