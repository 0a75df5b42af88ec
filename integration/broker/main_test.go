package broker

import (
	"testing"
	"time"
)

// Timeouts for tests. Generous: the machine is shared and a node's boot or
// a rabbitmqctl run can be slow under load.
const (
	defaultTestTimeout = 60 * time.Second
	// shortTestTimeout bounds waits for things that should be quick.
	shortTestTimeout = 10 * time.Second
)

// TestMain shares one node, with the management plugin so the management
// API client can be tested against the real API.
func TestMain(m *testing.M) {
	MainWith(m, Options{Management: true})
}
