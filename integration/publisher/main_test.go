// Package publisher_test runs conn.Publisher against a real RabbitMQ with
// real faults: connections killed by the broker (through the management
// API, which is fast enough to kill every 700 ms), TCP resets and partitions
// through the fault proxy, nacks, returns and channel errors; and it
// benchmarks the Publisher against raw amqp091-go.
package publisher_test

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

// The management API closes a user's connections in milliseconds;
// rabbitmqctl needs about a second per call (it boots an Erlang VM).
func TestMain(m *testing.M) { broker.MainWith(m, broker.Options{Management: true}) }
