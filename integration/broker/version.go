package broker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EnvVersion is the environment variable that pins the RabbitMQ release of
// the node Find and StartCluster start: Version310 or Version40. When it (or
// Options.Version) is set, AMQP_URL and Docker are not used: the tests run
// on a private local node of that release or fail.
const EnvVersion = "WARREN_RABBITMQ"

// RabbitMQ releases a local node can run, as EnvVersion spells them.
const (
	// Version310 is the host's rabbitmq-server (Debian bookworm: 3.10.8).
	Version310 = "3.10"
	// Version40 is rabbitmq-server in a Debian trixie root (4.0.5), built by
	// scripts/ensure-rabbitmq4.sh; its programs run through chroot.
	Version40 = "4.0"
)

// EnvTrixieRoot overrides where the Debian trixie root is.
const EnvTrixieRoot = "WARREN_RABBITMQ4_ROOT"

// defaultTrixieRoot is where scripts/ensure-rabbitmq4.sh builds the root.
const defaultTrixieRoot = "/var/cache/warren/rabbitmq-trixie"

// Paths inside the trixie root.
const (
	trixieScripts = "/usr/lib/rabbitmq/bin"
	trixieEpmd    = "/usr/bin/epmd"
	trixieErl     = "/usr/bin/erl"
)

// trixieRoot returns the trixie root's directory.
func trixieRoot() string {
	if r := os.Getenv(EnvTrixieRoot); r != "" {
		return r
	}
	return defaultTrixieRoot
}

// pinnedVersion returns the release opts or the environment pins, or "".
func pinnedVersion(opts Options) string {
	if opts.Version != "" {
		return opts.Version
	}
	return os.Getenv(EnvVersion)
}

// describeVersion is describe for a pinned release: a local node only. It
// returns an error when that release cannot be started here.
func describeVersion(ctx context.Context, want string) (environment, error) {
	var env environment
	switch want {
	case Version310:
		scripts, why := findScripts(exec.LookPath)
		probeStarters(ctx, &env, scripts, why)
		env.DockerOK = false
	case Version40:
		root := trixieRoot()
		scripts := filepath.Join(root, trixieScripts)
		if !isScriptsDir(scripts) {
			return env, fmt.Errorf("%w: %s=%s but %s holds no RabbitMQ scripts; run scripts/ensure-rabbitmq4.sh (as root) to build the Debian trixie root",
				ErrNoBroker, EnvVersion, want, scripts)
		}
		env.Root = root
		env.ServerPath = filepath.Join(trixieScripts, "rabbitmq-server")
		env.EpmdPath = trixieEpmd
		env.CtlPath = filepath.Join(trixieScripts, "rabbitmqctl")
	default:
		return env, fmt.Errorf("%w: %s=%q; want %q (the host's rabbitmq-server) or %q (the Debian trixie root)",
			ErrNoBroker, EnvVersion, want, Version310, Version40)
	}
	if env.ServerPath == "" {
		return env, fmt.Errorf("%w: %s=%s: %s\n%s", ErrNoBroker, EnvVersion, want, env.ServerWhy, howToGetBroker)
	}
	if got := localVersion(env); !strings.HasPrefix(got, want+".") {
		return env, fmt.Errorf("%w: %s=%s but the rabbitmq-server found is %s", ErrNoBroker, EnvVersion, want, got)
	}
	return env, nil
}

// findVersion is FindWith for a pinned release.
func findVersion(ctx context.Context, want string, opts Options, logf func(string, ...any)) (*Broker, error) {
	env, err := describeVersion(ctx, want)
	if err != nil {
		return nil, err
	}
	return fromLocal(ctx, env, opts, logf)
}

// localVersion returns the release of env's local rabbitmq-server, read
// from the name of the directory its scripts live in
// (lib/rabbitmq_server-X.Y.Z), or "unknown".
func localVersion(env environment) string {
	const prefix = "rabbitmq_server-"
	dirs := []string{}
	if real, err := filepath.EvalSymlinks(env.Root + env.ServerPath); err == nil {
		dirs = append(dirs, real)
	}
	// A root's links are absolute, so EvalSymlinks above may leave it.
	matches, _ := filepath.Glob(filepath.Join(env.Root, "/usr/lib/rabbitmq/lib", prefix+"*"))
	dirs = append(dirs, matches...)
	for _, d := range dirs {
		for _, part := range strings.Split(filepath.ToSlash(d), "/") {
			if v, ok := strings.CutPrefix(part, prefix); ok {
				return v
			}
		}
	}
	return "unknown"
}

// rootText says where a local node runs, for the log.
func rootText(root string) string {
	if root == "" {
		return "host rabbitmq-server"
	}
	return "chroot " + root
}

// setRoot runs every program of the cluster (epmd, the nodes, rabbitmqctl,
// the remote control node) in root; "" means the host.
func (lc *localCluster) setRoot(root string) {
	lc.epmd.root = root
	for _, n := range lc.nodes {
		n.root = root
	}
}

// erl returns the erl of the cluster's release, for the remote control
// node: the root's when there is one, so it speaks the nodes' Erlang.
func (lc *localCluster) erl() (string, error) {
	if lc.epmd.root != "" {
		return trixieErl, nil
	}
	return exec.LookPath("erl")
}
