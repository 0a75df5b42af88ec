package broker

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/docker/docker/pkg/stdcopy"
	"github.com/testcontainers/testcontainers-go"
	tcrabbitmq "github.com/testcontainers/testcontainers-go/modules/rabbitmq"
)

// defaultDockerImage is the image Find runs when a Docker engine answers: a
// management image, so MgmtURL is set and rabbitmqctl is inside.
const defaultDockerImage = "rabbitmq:3.13-management"

// dockerNode is a RabbitMQ container started by Find.
type dockerNode struct {
	c       *tcrabbitmq.RabbitMQContainer
	url     string
	mgmtURL string
}

// startDocker runs a RabbitMQ container. testcontainers-go panics in some
// set-ups without a usable engine (Find probes for one first); the panic is
// turned into an error as a second guard.
func startDocker(ctx context.Context, image string) (n *dockerNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker: testcontainers panicked: %v", r)
		}
	}()
	c, err := tcrabbitmq.Run(ctx, image)
	if err != nil {
		if c != nil {
			_ = terminate(context.WithoutCancel(ctx), c)
		}
		return nil, fmt.Errorf("broker: starting %s container: %w", image, err)
	}
	n = &dockerNode{c: c}
	if n.url, err = c.AmqpURL(ctx); err == nil {
		n.mgmtURL, err = c.HttpURL(ctx)
	}
	if err != nil {
		_ = terminate(context.WithoutCancel(ctx), c)
		return nil, fmt.Errorf("broker: container endpoints: %w", err)
	}
	n.url = strings.TrimSuffix(n.url, "/") + "/"
	if u, perr := url.Parse(n.mgmtURL); perr == nil {
		u.User = url.UserPassword(c.AdminUsername, c.AdminPassword)
		n.mgmtURL = u.String() + "/"
	}
	return n, nil
}

func (n *dockerNode) close(ctx context.Context) error {
	return terminate(ctx, n.c)
}

// terminate stops and removes the container, recovering from a panic like
// startDocker does.
func terminate(ctx context.Context, c testcontainers.Container) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("broker: testcontainers panicked: %v", r)
		}
	}()
	if err := c.Terminate(ctx); err != nil {
		return fmt.Errorf("broker: removing container: %w", err)
	}
	return nil
}

// dockerRunner runs rabbitmqctl inside the container.
type dockerRunner struct {
	c testcontainers.Container
	// cookie, when set, is passed with --erlang-cookie: the nodes of a
	// cluster run with a cookie of the harness's choosing.
	cookie string
}

func (r dockerRunner) String() string { return "rabbitmqctl (docker exec)" }

func (r dockerRunner) run(ctx context.Context, args []string) (stdout, stderr string, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("broker: testcontainers panicked: %v", rec)
		}
	}()
	cmd := []string{"rabbitmqctl", "-q"}
	if r.cookie != "" {
		cmd = append(cmd, "--erlang-cookie", r.cookie)
	}
	code, rd, err := r.c.Exec(ctx, append(cmd, args...))
	if err != nil {
		return "", "", err
	}
	var out, errOut cappedBuffer
	if _, err := stdcopy.StdCopy(&out, &errOut, rd); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("reading exec output: %w", err)
	}
	if code != 0 {
		return out.String(), errOut.String(), fmt.Errorf("exit status %d", code)
	}
	return out.String(), errOut.String(), nil
}
