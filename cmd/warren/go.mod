module github.com/warrenmq/warren/cmd/warren

go 1.26.0

require (
	github.com/rabbitmq/amqp091-go v1.16.0
	github.com/warrenmq/warren v0.1.0
	github.com/warrenmq/warren/integration v0.1.0
	golang.org/x/term v0.45.0
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
