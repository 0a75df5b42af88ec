// Package supervisor_test runs conn.Supervisor against a real RabbitMQ with
// real faults: broker-side closes, stop_app, memory alarms, partitions through
// the fault proxy, bad credentials.
package supervisor_test

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

func TestMain(m *testing.M) { broker.Main(m) }
