// Package errors_test checks, against a real RabbitMQ, the errors a newcomer
// meets first: a topology the broker refuses for what it says must stop the
// supervisor with a permanent error naming the entity, never loop.
package errors_test

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

func TestMain(m *testing.M) { broker.Main(m) }
