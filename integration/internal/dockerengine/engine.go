// Package dockerengine is the seam between package broker and the Docker
// client: broker starts RabbitMQ containers through the Engine registered
// here, and package broker/docker registers one built on testcontainers-go.
// A program that does not import broker/docker (the warren CLI) therefore
// links neither testcontainers-go nor the Docker client, and its broker.Find
// uses AMQP_URL or a private local node only.
package dockerengine

import (
	"context"
	"io"
	"sync"
)

// RunOptions says how to run one container.
type RunOptions struct {
	// Network is the name of a network from NewNetwork to join; "" is the
	// engine's default network.
	Network string
	// Hostname is the container's host name and its alias on Network.
	Hostname string
	// Env holds extra environment variables.
	Env map[string]string
}

// Container is a running RabbitMQ management container.
type Container struct {
	// ID is the engine's container ID.
	ID string
	// AMQPURL is amqp://user:pass@host:port/ on a published loopback port.
	AMQPURL string
	// MgmtURL is http://user:pass@host:port/ of the management API.
	MgmtURL string
	// Exec runs cmd inside the container, copying its output to stdout and
	// stderr, and returns its exit code.
	Exec func(ctx context.Context, cmd []string, stdout, stderr io.Writer) (code int, err error)
	// Restart stops the container (RabbitMQ shuts down as on SIGTERM) and
	// starts it again on the same host ports, returning once RabbitMQ has
	// booted.
	Restart func(ctx context.Context) error
	// Terminate stops and removes the container.
	Terminate func(ctx context.Context) error
}

// Engine runs RabbitMQ containers.
type Engine interface {
	// Run starts a container of image and returns once RabbitMQ has booted.
	// On error nothing it started is left running.
	Run(ctx context.Context, image string, opts RunOptions) (*Container, error)
	// NewNetwork creates a network for a cluster's containers and returns
	// its name and how to remove it.
	NewNetwork(ctx context.Context) (name string, remove func(context.Context) error, err error)
	// LeakIgnores names functions of goroutines the engine keeps for the
	// life of the process, which goleak must not call leaks.
	LeakIgnores() []string
}

var (
	mu     sync.Mutex
	engine Engine
)

// Register makes e the engine broker uses; the last registration wins.
func Register(e Engine) {
	mu.Lock()
	defer mu.Unlock()
	engine = e
}

// Get returns the registered engine, or nil when no package registered one.
func Get() Engine {
	mu.Lock()
	defer mu.Unlock()
	return engine
}
