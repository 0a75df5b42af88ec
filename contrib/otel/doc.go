// Package warrenotel traces and measures warren publishers and consumers
// with OpenTelemetry.
//
// Tracing follows OpenTelemetry's messaging semantic conventions for
// RabbitMQ. The publish interceptor starts a producer span per message
// ("publish EXCHANGE", messaging.operation.type "send") as a child of the
// caller's context, injects the span's context into the message headers
// with the W3C trace-context propagator (traceparent, tracestate), and ends
// the span when the message settles: with status Ok once the broker
// confirmed it, Error otherwise, and the outcome in warren.publish.outcome.
// A message republished after a lost connection is the same span (it
// settles once) and carries the same headers; a copy a consumer sends to a
// retry queue keeps the headers too, so its redelivery is processed under
// the original publish.
//
// The handler middleware extracts the context from a delivery's headers
// and runs the handler under a consumer span ("process QUEUE",
// messaging.operation.type "process") whose parent is the producer span,
// in another process as much as in this one; the span ends when the
// delivery is settled, with the outcome in warren.delivery.outcome and
// warren.delivery.settlement.
//
//	inst, err := warrenotel.New(warrenotel.Options{}) // global providers and propagator
//	pub, err := sup.NewPublisher(ctx, conn.PublisherOptions{
//		Interceptors: []conn.PublishInterceptor{inst.PublishInterceptor()},
//	})
//	cons, err := sup.Consume(ctx, q, handle, conn.ConsumerOptions{
//		Middleware: []conn.HandlerMiddleware{inst.HandlerMiddleware()},
//	})
//
// The same metrics as the Prometheus module, through the OTel metrics API:
// messaging.client.sent.messages and messaging.client.operation.duration
// (per publisher, by warren.publish.outcome), messaging.client.consumed.messages and
// messaging.process.duration (per consumer and queue, by
// warren.delivery.outcome), warren.outage.duration and
// warren.dial.duration (from EventHandler), and every Stats counter as an
// observable counter warren.<name> (ObserveStats).
//
// Attributes set on spans:
//
//	messaging.system                            rabbitmq
//	messaging.operation.type                    send | process
//	messaging.operation.name                    publish | process
//	messaging.destination.name                  the exchange ("amq.default" for the default exchange)
//	messaging.destination.subscription.name     the queue consumed (consumer spans)
//	messaging.rabbitmq.destination.routing_key  the routing key
//	messaging.message.id                        MessageId
//	messaging.message.conversation_id           CorrelationId, if set
//	messaging.message.body.size                 body length in bytes
//	messaging.consumer.group.name               not set: RabbitMQ has none
//	messaging.rabbitmq.message.delivery_tag     delivery tag (consumer spans)
//	warren.publisher, warren.consumer           the publisher's or consumer's name
//	warren.publish.outcome                      acked | nacked | returned | failed
//	warren.delivery.outcome                     ack | requeue | reject | retry
//	warren.delivery.settlement                  ack | requeue | reject | autoack | none
package warrenotel
