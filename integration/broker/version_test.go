package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot makes a directory that looks like a Debian root holding RabbitMQ
// version, with empty scripts.
func fakeRoot(t *testing.T, version string) string {
	t.Helper()
	root := t.TempDir()
	lib := filepath.Join(root, "usr/lib/rabbitmq/lib/rabbitmq_server-"+version, "sbin")
	scripts := filepath.Join(root, trixieScripts)
	for _, d := range []string{lib, scripts} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"rabbitmq-server", "rabbitmqctl", "rabbitmq-env"} {
		if err := os.WriteFile(filepath.Join(scripts, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLocalVersion(t *testing.T) {
	root := fakeRoot(t, "4.0.5")
	env := environment{Root: root, ServerPath: filepath.Join(trixieScripts, "rabbitmq-server")}
	if got := localVersion(env); got != "4.0.5" {
		t.Errorf("localVersion = %q, want 4.0.5", got)
	}
	env.Root = t.TempDir()
	if got := localVersion(env); got != "unknown" {
		t.Errorf("localVersion of an empty root = %q, want unknown", got)
	}
}

func TestDescribeVersion(t *testing.T) {
	ctx := context.Background()
	t.Run("4.0 in a root", func(t *testing.T) {
		root := fakeRoot(t, "4.0.5")
		t.Setenv(EnvTrixieRoot, root)
		env, err := describeVersion(ctx, Version40)
		if err != nil {
			t.Fatal(err)
		}
		if env.Root != root || env.ServerPath != "/usr/lib/rabbitmq/bin/rabbitmq-server" || env.EpmdPath != trixieEpmd || env.DockerOK {
			t.Errorf("environment %+v", env)
		}
	})
	for _, tt := range []struct {
		name, want, rootVersion string
	}{
		{"no root", Version40, ""},
		{"root of another release", Version40, "4.1.0"},
		{"unknown release", "3.13", "4.0.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.rootVersion != "" {
				root = fakeRoot(t, tt.rootVersion)
			}
			t.Setenv(EnvTrixieRoot, root)
			if _, err := describeVersion(ctx, tt.want); !errors.Is(err, ErrNoBroker) {
				t.Errorf("describeVersion(%q) = %v, want an error wrapping ErrNoBroker", tt.want, err)
			}
		})
	}
}

func TestPinnedVersion(t *testing.T) {
	t.Setenv(EnvVersion, Version310)
	if got := pinnedVersion(Options{}); got != Version310 {
		t.Errorf("pinnedVersion from the environment = %q", got)
	}
	if got := pinnedVersion(Options{Version: Version40}); got != Version40 {
		t.Errorf("Options.Version did not win over the environment: %q", got)
	}
}
