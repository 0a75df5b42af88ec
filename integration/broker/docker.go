package broker

import (
	"context"
	"fmt"
	"os"

	"github.com/warrenmq/warren/integration/internal/dockerengine"
)

// defaultDockerImage is the image Find runs when a Docker engine answers and
// neither Options.Image nor EnvDockerImage names one: a management image, so
// MgmtURL is set and rabbitmqctl is inside.
const defaultDockerImage = "rabbitmq:3.13-management"

// EnvDockerImage names the environment variable that picks the image of the
// Docker path when Options.Image is empty: any image that behaves like the
// official rabbitmq:*-management one for testcontainers-go's rabbitmq
// module (make test-docker sets it to a RabbitMQ 4.0.5 image built by
// scripts/docker-image.sh).
const EnvDockerImage = "WARREN_DOCKER_IMAGE"

// dockerImage is the image the Docker path runs: image, else
// $WARREN_DOCKER_IMAGE, else defaultDockerImage.
func dockerImage(image string) string {
	if image != "" {
		return image
	}
	if env := os.Getenv(EnvDockerImage); env != "" {
		return env
	}
	return defaultDockerImage
}

// noDockerSupport says why a binary has no Docker path.
const noDockerSupport = "Docker support is not linked into this program (import github.com/warrenmq/warren/integration/broker/docker)"

// dockerNode is a RabbitMQ container started by Find.
type dockerNode struct {
	c       *dockerengine.Container
	url     string
	mgmtURL string
}

// startDocker runs a RabbitMQ container through the registered engine.
func startDocker(ctx context.Context, image string) (*dockerNode, error) {
	e := dockerengine.Get()
	if e == nil {
		return nil, fmt.Errorf("broker: %s: %w", noDockerSupport, ErrUnsupported)
	}
	c, err := e.Run(ctx, image, dockerengine.RunOptions{})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &dockerNode{c: c, url: c.AMQPURL, mgmtURL: c.MgmtURL}, nil
}

func (n *dockerNode) close(ctx context.Context) error {
	return terminate(ctx, n.c)
}

// terminate stops and removes the container.
func terminate(ctx context.Context, c *dockerengine.Container) error {
	if err := c.Terminate(ctx); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// dockerRunner runs rabbitmqctl inside the container.
type dockerRunner struct {
	c *dockerengine.Container
	// cookie, when set, is passed with --erlang-cookie: the nodes of a
	// cluster run with a cookie of the harness's choosing.
	cookie string
}

func (r dockerRunner) String() string { return "rabbitmqctl (docker exec)" }

func (r dockerRunner) run(ctx context.Context, args []string) (stdout, stderr string, err error) {
	cmd := []string{"rabbitmqctl", "-q"}
	if r.cookie != "" {
		cmd = append(cmd, "--erlang-cookie", r.cookie)
	}
	var out, errOut cappedBuffer
	code, err := r.c.Exec(ctx, append(cmd, args...), &out, &errOut)
	if err != nil {
		return out.String(), errOut.String(), err
	}
	if code != 0 {
		return out.String(), errOut.String(), fmt.Errorf("exit status %d", code)
	}
	return out.String(), errOut.String(), nil
}
