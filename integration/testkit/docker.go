package testkit

// Every integration test package imports testkit, so this import links the
// Docker path (testcontainers-go) into each of them: broker.Find runs a
// container when a Docker engine answers. The warren CLI imports package
// broker without it.
import _ "github.com/warrenmq/warren/integration/broker/docker"
