package warrenotel

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenmq/warren/conn"
)

// Attribute keys of warren's own.
const (
	publisherKey        = attribute.Key("warren.publisher")
	consumerKey         = attribute.Key("warren.consumer")
	publishOutcomeKey   = attribute.Key("warren.publish.outcome")
	deliveryOutcomeKey  = attribute.Key("warren.delivery.outcome")
	deliverySettleKey   = attribute.Key("warren.delivery.settlement")
	dialResultKey       = attribute.Key("warren.dial.result")
	defaultExchangeName = "amq.default"
)

// destination is the messaging.destination.name of exchange.
func destination(exchange string) string {
	if exchange == "" {
		return defaultExchangeName
	}
	return exchange
}

// messageAttrs are the attributes of a message common to both span kinds.
// extra is the number of attributes the caller appends.
func messageAttrs(exchange, key, id, correlation string, size, extra int) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 6+extra) // room for the callers' appends
	attrs = append(attrs,
		semconv.MessagingSystemRabbitMQ,
		semconv.MessagingDestinationName(destination(exchange)),
		semconv.MessagingRabbitMQDestinationRoutingKey(key),
		semconv.MessagingMessageBodySize(size),
	)
	if id != "" {
		attrs = append(attrs, semconv.MessagingMessageID(id))
	}
	if correlation != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(correlation))
	}
	return attrs
}

// PublishInterceptor returns the interceptor that starts a producer span
// per message, injects its context into the message's headers, and ends
// it, with its measurements, when the message settles. Add it to
// conn.PublisherOptions.Interceptors, last if other interceptors change the
// message.
func (i *Instrumentation) PublishInterceptor() conn.PublishInterceptor {
	return func(ctx context.Context, pub *conn.OutgoingPublish) (context.Context, conn.PublishSettled) {
		msg := pub.Msg
		attrs := messageAttrs(pub.Exchange, pub.RoutingKey, msg.MessageId, msg.CorrelationId, len(msg.Body), 3+len(i.attrs))
		attrs = append(attrs, semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("publish"),
			publisherKey.String(pub.Publisher))
		attrs = append(attrs, i.attrs...)
		ctx, span := i.tracer.Start(ctx, "publish "+destination(pub.Exchange),
			trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
		if msg.Headers == nil {
			msg.Headers = amqp.Table{}
		}
		i.prop.Inject(ctx, headerCarrier(msg.Headers))
		name := pub.Publisher
		began := time.Now()
		return ctx, func(r conn.PublishResult) {
			outcome := r.Outcome.String()
			span.SetAttributes(publishOutcomeKey.String(outcome))
			if r.Outcome == conn.PublishAcked {
				span.SetStatus(codes.Ok, "")
			} else {
				span.RecordError(r.Err)
				span.SetStatus(codes.Error, outcome)
			}
			span.End(trace.WithTimestamp(r.Settled))
			set := i.pubSets.get(attrKey{name, outcome, ""}, func() []attribute.KeyValue {
				return append([]attribute.KeyValue{publisherKey.String(name), publishOutcomeKey.String(outcome),
					semconv.MessagingSystemRabbitMQ, semconv.MessagingOperationName("publish")}, i.attrs...)
			})
			i.sent.Add(context.Background(), 1, set)
			i.sendTime.Record(context.Background(), r.Settled.Sub(began).Seconds(), set)
		}
	}
}
