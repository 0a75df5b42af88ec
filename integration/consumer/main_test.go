// Package consumer_test runs conn topologies and consumers against a real
// RabbitMQ: server-named queues across reconnects, refused re-declarations,
// deleted queues, consumer_timeout, Close with handlers in flight, panics,
// a 10,000-message backlog consumed while the connection is killed every
// 500 ms, and a throughput benchmark against raw amqp091-go.
package consumer_test

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

// The management plugin gives a broker-side kill that costs milliseconds
// (DELETE /api/connections/username/U); rabbitmqctl boots an Erlang VM for
// each call (about 1 s), too slow to kill every 500 ms.
func TestMain(m *testing.M) { broker.MainWith(m, broker.Options{Management: true}) }
