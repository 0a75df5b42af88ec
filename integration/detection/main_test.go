// Package detection_test proves dead-peer detection under load against a real
// RabbitMQ: a partition while confirms are owed is noticed by the
// replies-owed rule, well before the silence limit, and a loaded broker that
// delays its replies for legitimate reasons (credit flow at the highest
// publish rate, consumers with prefetch and slow acks, memory alarms, a
// GC-heavy client) is never declared dead.
//
// The soak runs for WARREN_SOAK (a Go duration; 60s by default, 10m for
// `make soak`).
package detection_test

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

func TestMain(m *testing.M) { broker.Main(m) }
