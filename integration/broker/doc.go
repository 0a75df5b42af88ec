// Package broker finds or starts a RabbitMQ broker for tests and demos, and injects faults into it.
package broker

import (
	_ "github.com/rabbitmq/amqp091-go"
	_ "github.com/testcontainers/testcontainers-go"
	_ "github.com/testcontainers/testcontainers-go/modules/rabbitmq"
	_ "github.com/warrenmq/warren/conn"
	_ "go.uber.org/goleak"
)
