package broker

import (
	"context"
	"errors"
	"testing"
)

// TestDockerPathNeedsTheEnginePackage: package broker alone (as the warren
// CLI links it) has no Docker path: Find never picks Docker, says why, and
// a direct start is unsupported rather than a panic or a dial.
func TestDockerPathNeedsTheEnginePackage(t *testing.T) {
	var env environment
	probeStarters(context.Background(), &env, "", "no rabbitmq-server here")
	if env.DockerOK || env.DockerWhy != noDockerSupport {
		t.Errorf("probeStarters: DockerOK %v, DockerWhy %q; want false and %q", env.DockerOK, env.DockerWhy, noDockerSupport)
	}
	if _, err := startDocker(context.Background(), defaultDockerImage); !errors.Is(err, ErrUnsupported) {
		t.Errorf("startDocker = %v, want ErrUnsupported", err)
	}
	if _, err := startDockerCluster(context.Background(), 3, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("startDockerCluster = %v, want ErrUnsupported", err)
	}
}

func TestDockerImageChoice(t *testing.T) {
	t.Setenv(EnvDockerImage, "")
	if got := dockerImage(""); got != defaultDockerImage {
		t.Errorf("no option, no env: %q, want %q", got, defaultDockerImage)
	}
	t.Setenv(EnvDockerImage, "example/rabbitmq:4")
	if got := dockerImage(""); got != "example/rabbitmq:4" {
		t.Errorf("env: %q", got)
	}
	if got := dockerImage("opt/rabbitmq:3"); got != "opt/rabbitmq:3" {
		t.Errorf("an Options.Image wins over the env: %q", got)
	}
}
