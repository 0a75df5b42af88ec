package main

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

// The smoke test runs the service against a real broker, found or started
// the way the integration tests do it.
func TestMain(m *testing.M) { broker.Main(m) }
