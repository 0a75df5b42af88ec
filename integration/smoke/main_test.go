package smoke

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
	// The Docker path (testcontainers-go): make test-docker runs this package in a container.
	_ "github.com/warrenmq/warren/integration/broker/docker"
)

// Timeouts for tests. The machine is shared: bounds are generous, and
// timing targets are logged, not asserted.
const (
	// defaultTestTimeout bounds one test's broker operations.
	defaultTestTimeout = 60 * time.Second
	// eventTimeout bounds the wait for a broker event (a close, a block)
	// that should arrive within a few seconds.
	eventTimeout = 10 * time.Second
	// closeTimeout bounds closing a client connection in cleanup.
	closeTimeout = 5 * time.Second
)

func TestMain(m *testing.M) {
	broker.Main(m)
}

// uniqueName returns prefix plus a random suffix, so reruns and parallel
// test binaries on one broker never match each other's connections.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// dial opens a connection to url with connection_name name and closes it,
// bounded, when the test ends.
func dial(t *testing.T, url, name string, cfg amqp.Config) *amqp.Connection {
	t.Helper()
	if cfg.Properties == nil {
		cfg.Properties = amqp.Table{}
	}
	cfg.Properties["connection_name"] = name
	if cfg.Dial == nil {
		cfg.Dial = amqp.DefaultDial(eventTimeout)
	}
	conn, err := amqp.DialConfig(url, cfg)
	if err != nil {
		t.Fatalf("dial as %s: %v", name, err)
	}
	t.Cleanup(func() { _ = conn.CloseDeadline(time.Now().Add(closeTimeout)) })
	return conn
}

// awaitClose waits up to eventTimeout for a NotifyClose delivery.
func awaitClose(t *testing.T, ch <-chan *amqp.Error) *amqp.Error {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	select {
	case e := <-ch:
		return e
	case <-timer.C:
		t.Fatalf("no NotifyClose within %v", eventTimeout)
		return nil
	}
}
