package warrenotel

import (
	"context"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenmq/warren/conn"
)

// HandlerMiddleware returns the middleware that runs each delivery's
// handler under a consumer span whose parent is the context extracted from
// the delivery's headers (the producer span), and records its
// measurements. The span ends once the delivery is settled; its status is
// Error when the handler returned an error or panicked. Add it to
// conn.ConsumerOptions.Middleware, first, so that other middleware runs
// inside the span.
func (i *Instrumentation) HandlerMiddleware() conn.HandlerMiddleware {
	return func(next conn.HandleFunc) conn.HandleFunc {
		return func(ctx context.Context, info conn.DeliveryInfo, d amqp.Delivery) conn.HandleResult {
			ctx = i.prop.Extract(ctx, headerCarrier(d.Headers))
			attrs := messageAttrs(d.Exchange, d.RoutingKey, d.MessageId, d.CorrelationId, len(d.Body), 5+len(i.attrs))
			attrs = append(attrs, semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process"),
				semconv.MessagingDestinationSubscriptionName(info.Queue),
				semconv.MessagingRabbitMQMessageDeliveryTag(int(d.DeliveryTag)),
				consumerKey.String(info.Consumer))
			attrs = append(attrs, i.attrs...)
			ctx, span := i.tracer.Start(ctx, "process "+info.Queue,
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
			start := time.Now()
			r := next(ctx, info, d)
			elapsed := time.Since(start)
			outcome := strings.ToLower(r.Outcome.String())
			span.SetAttributes(deliveryOutcomeKey.String(outcome), deliverySettleKey.String(r.Settlement.String()))
			if r.Err != nil {
				span.RecordError(r.Err)
				span.SetStatus(codes.Error, outcome)
			}
			span.End()
			set := i.conSets.get(attrKey{info.Consumer, info.Queue, outcome}, func() []attribute.KeyValue {
				return append([]attribute.KeyValue{consumerKey.String(info.Consumer),
					semconv.MessagingDestinationSubscriptionName(info.Queue), deliveryOutcomeKey.String(outcome),
					semconv.MessagingSystemRabbitMQ, semconv.MessagingOperationName("process")}, i.attrs...)
			})
			i.consumed.Add(context.Background(), 1, set)
			i.process.Record(context.Background(), elapsed.Seconds(), set)
			return r
		}
	}
}
