module github.com/warrenmq/warren

go 1.21

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/rabbitmq/amqp091-go v1.16.0
	go.uber.org/goleak v1.3.0
)
