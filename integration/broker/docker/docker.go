// Package docker gives package broker its Docker path: importing it (for
// its side effect) registers an engine built on testcontainers-go, so
// broker.Find and broker.StartCluster run RabbitMQ containers when a Docker
// engine answers. warren's integration tests and package warrentest import
// it; the warren CLI does not, so it links neither testcontainers-go nor the
// Docker client.
//
//	import _ "github.com/warrenmq/warren/integration/broker/docker"
//
// The image is broker.Options.Image, else $WARREN_DOCKER_IMAGE, else
// rabbitmq:3.13-management. testcontainers-go reads its own settings from
// the environment: DOCKER_HOST, TESTCONTAINERS_RYUK_DISABLED and
// TESTCONTAINERS_HOST_OVERRIDE (make test-docker sets all three).
package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/testcontainers/testcontainers-go"
	tcrabbitmq "github.com/testcontainers/testcontainers-go/modules/rabbitmq"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/warrenmq/warren/integration/internal/dockerengine"
)

func init() { dockerengine.Register(engine{}) }

// engine runs containers through testcontainers-go's rabbitmq module.
// testcontainers-go panics in some set-ups without a usable engine (broker
// probes for one first); every call turns a panic into an error as a
// second guard.
type engine struct{}

func (engine) Run(ctx context.Context, image string, opts dockerengine.RunOptions) (c *dockerengine.Container, err error) {
	defer recoverTo(&err)
	var custom []testcontainers.ContainerCustomizer
	if opts.Network != "" {
		custom = append(custom, network.WithNetworkName([]string{opts.Hostname}, opts.Network))
	}
	if opts.Hostname != "" {
		host := opts.Hostname
		custom = append(custom, testcontainers.WithConfigModifier(func(cfg *container.Config) { cfg.Hostname = host }))
	}
	if len(opts.Env) > 0 {
		custom = append(custom, testcontainers.WithEnv(opts.Env))
	}
	bind, err := loopbackBindings(tcrabbitmq.DefaultAMQPPort, tcrabbitmq.DefaultHTTPPort)
	if err != nil {
		return nil, err
	}
	custom = append(custom, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.PortBindings = bind }))
	ctr, err := tcrabbitmq.Run(ctx, image, custom...)
	if err != nil {
		if ctr != nil {
			_ = terminate(context.WithoutCancel(ctx), ctr)
		}
		return nil, fmt.Errorf("starting %s container: %w", image, err)
	}
	c, err = describe(ctx, ctr)
	if err != nil {
		_ = terminate(context.WithoutCancel(ctx), ctr)
		return nil, fmt.Errorf("container endpoints: %w", err)
	}
	return c, nil
}

// describe gives the container's endpoints, with the admin credentials.
func describe(ctx context.Context, ctr *tcrabbitmq.RabbitMQContainer) (*dockerengine.Container, error) {
	amqpURL, err := ctr.AmqpURL(ctx)
	if err != nil {
		return nil, err
	}
	httpURL, err := ctr.HttpURL(ctx)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(httpURL)
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword(ctr.AdminUsername, ctr.AdminPassword)
	return &dockerengine.Container{
		ID:      ctr.GetContainerID(),
		AMQPURL: strings.TrimSuffix(amqpURL, "/") + "/",
		MgmtURL: u.String() + "/",
		Exec: func(ctx context.Context, cmd []string, stdout, stderr io.Writer) (int, error) {
			return exec(ctx, ctr, cmd, stdout, stderr)
		},
		Restart:   func(ctx context.Context) error { return restart(ctx, ctr) },
		Terminate: func(ctx context.Context) error { return terminate(ctx, ctr) },
	}, nil
}

func exec(ctx context.Context, ctr testcontainers.Container, cmd []string, stdout, stderr io.Writer) (code int, err error) {
	defer recoverTo(&err)
	code, rd, err := ctr.Exec(ctx, cmd)
	if err != nil {
		return code, err
	}
	if _, err := stdcopy.StdCopy(stdout, stderr, rd); err != nil {
		return code, fmt.Errorf("reading exec output: %w", err)
	}
	return code, nil
}

// loopbackBindings publishes each port on a free port of 127.0.0.1 chosen
// here rather than by the engine: a restarted container keeps its bindings,
// so the broker's URLs stay valid across Restart. Another process may take
// a port between this choice and the container's start; Run then fails.
func loopbackBindings(ports ...string) (nat.PortMap, error) {
	m := nat.PortMap{}
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choosing a host port for %s: %w", p, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		m[nat.Port(p)] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}
	}
	return m, nil
}

// restartStopTimeout is how long the engine lets RabbitMQ shut down on
// SIGTERM before it kills the container.
const restartStopTimeout = 30 * time.Second

// awaitInterval spaces the readiness checks after a restart.
const awaitInterval = 500 * time.Millisecond

// restart stops and starts the container, then waits, bounded by ctx, until
// rabbitmqctl await_startup succeeds inside it: the wait strategy of Start
// would find the first boot's "Server startup complete" line in the log.
func restart(ctx context.Context, ctr testcontainers.Container) (err error) {
	defer recoverTo(&err)
	timeout := restartStopTimeout
	if err := ctr.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stopping container: %w", err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("starting container: %w", err)
	}
	tick := time.NewTicker(awaitInterval)
	defer tick.Stop()
	for {
		var out bytes.Buffer
		code, err := exec(ctx, ctr, []string{"rabbitmqctl", "-q", "await_startup", "--timeout", "5"}, &out, &out)
		if err == nil && code == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("RabbitMQ did not boot after the restart: %w (last: exit %d %v %s)", ctx.Err(), code, err, strings.TrimSpace(out.String()))
		case <-tick.C:
		}
	}
}

// terminate stops and removes the container.
func terminate(ctx context.Context, c testcontainers.Container) (err error) {
	defer recoverTo(&err)
	if err := c.Terminate(ctx); err != nil {
		return fmt.Errorf("removing container: %w", err)
	}
	return nil
}

func (engine) NewNetwork(ctx context.Context) (name string, remove func(context.Context) error, err error) {
	defer recoverTo(&err)
	nw, err := network.New(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("creating Docker network: %w", err)
	}
	return nw.Name, func(ctx context.Context) (err error) {
		defer recoverTo(&err)
		if err := nw.Remove(ctx); err != nil {
			return fmt.Errorf("removing network %s: %w", nw.Name, err)
		}
		return nil
	}, nil
}

// LeakIgnores names the goroutines testcontainers-go keeps for the life of
// the process (its reaper connection and the Docker client's idle HTTP
// connections), which are not a test's leaks.
func (engine) LeakIgnores() []string {
	return []string{
		"github.com/testcontainers/testcontainers-go.(*Reaper).connect.func1",
		"net/http.(*persistConn).readLoop",
		"net/http.(*persistConn).writeLoop",
	}
}

func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("testcontainers panicked: %v", r)
	}
}
