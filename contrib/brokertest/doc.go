// Package brokertest tests the contrib modules (warrenprom, warrenotel)
// against a real RabbitMQ, found or started by the integration module's
// broker harness. It is a module of its own so that the contrib modules'
// own go.mod files never require the integration module (and its
// testcontainers dependencies and Go version): a user who imports
// contrib/prometheus or contrib/otel inherits nothing from these tests.
package brokertest
