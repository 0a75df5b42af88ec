package main

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

// The command's tests run against a real broker, found or started the way
// every integration test does it.
func TestMain(m *testing.M) { broker.Main(m) }
