// Package smoke holds smoke tests of the integration harness against a real
// broker: each fault the broker package offers is checked with raw
// amqp091-go, so later supervisor tests can trust the faults they inject.
// The package has no non-test code.
package smoke
