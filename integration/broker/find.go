package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/internal/dockerengine"
)

// Options tunes FindWith. The zero value is what Find uses.
type Options struct {
	// Management enables the rabbitmq_management plugin on a node started
	// from a local rabbitmq-server, so Broker.MgmtURL is set. It adds about
	// 2 s to the node's boot and 5 s to its stop. Defaults to false.
	Management bool
	// TLS, when set, adds a TLS listener to a node started from a local
	// rabbitmq-server, so Broker.TLSURL is set; on the other paths FindWith
	// fails with an error wrapping ErrUnsupported. Defaults to nil: only the
	// tests of TLS pay for it.
	TLS *TLSFiles
	// Image is the container image run when a Docker engine answers (and
	// the program imports package broker/docker, which links the Docker
	// path in). Defaults to $WARREN_DOCKER_IMAGE (EnvDockerImage), else
	// "rabbitmq:3.13-management".
	Image string
	// Version pins the RabbitMQ release of a local node (Version310 or
	// Version40; see EnvVersion); AMQP_URL and Docker are then not used.
	// Defaults to $WARREN_RABBITMQ, and to any broker when that is unset.
	Version string
	// Config holds lines appended to a local node's rabbitmq.conf.
	// Defaults to none.
	Config string
}

// knownScriptsDirs are where distributions install RabbitMQ's own scripts
// (as opposed to wrappers in /usr/sbin that switch to the rabbitmq user).
var knownScriptsDirs = []string{"/usr/lib/rabbitmq/bin"}

// Find returns a broker for tests, trying in order: the AMQP_URL
// environment variable (faults through rabbitmqctl when RABBITMQ_NODENAME
// is set, or the management API when AMQP_MGMT_URL is), a Docker engine
// (a RabbitMQ container), and a local rabbitmq-server (a private node in a
// temporary directory). It logs the path it chose once through logf, which
// may be nil, without passwords. The caller must Close the Broker. Find
// does not install anything; when it finds no broker its error wraps
// ErrNoBroker and says how to get one.
func Find(ctx context.Context, logf func(format string, args ...any)) (*Broker, error) {
	return FindWith(ctx, logf, Options{})
}

// FindWith is Find with options.
func FindWith(ctx context.Context, logf func(format string, args ...any), opts Options) (*Broker, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts.Image = dockerImage(opts.Image)
	// A pinned RabbitMQ release (version.go) means a local node of it.
	if want := pinnedVersion(opts); want != "" {
		return findVersion(ctx, want, opts, logf)
	}
	env := describe(ctx)
	p, err := choose(env)
	if err != nil {
		return nil, err
	}
	if opts.TLS != nil {
		// Only a node warren starts can be given the test's certificates.
		if env.ServerPath == "" {
			return nil, fmt.Errorf("broker: a TLS listener needs a local rabbitmq-server (%s): %w", env.ServerWhy, ErrUnsupported)
		}
		return fromLocal(ctx, env, opts, logf)
	}
	switch p.Source {
	case SourceURL:
		return fromURL(ctx, env, p, logf)
	case SourceDocker:
		b, err := fromDocker(ctx, opts, logf)
		if err == nil || env.ServerPath == "" {
			return b, err
		}
		logf("broker: Docker engine answers but %v; trying local rabbitmq-server", err)
	}
	return fromLocal(ctx, env, opts, logf)
}

// describe gathers the environment choose decides from. It probes for a
// Docker engine only when AMQP_URL is not set.
func describe(ctx context.Context) environment {
	env := environment{
		AMQPURL:  os.Getenv("AMQP_URL"),
		MgmtURL:  os.Getenv("AMQP_MGMT_URL"),
		NodeName: os.Getenv("RABBITMQ_NODENAME"),
	}
	scripts, why := findScripts(exec.LookPath)
	if scripts != "" {
		env.CtlPath = filepath.Join(scripts, "rabbitmqctl")
	}
	if env.AMQPURL != "" {
		return env
	}
	probeStarters(ctx, &env, scripts, why)
	return env
}

// probeStarters fills in the ways env offers to start a broker: a Docker
// engine, and a local rabbitmq-server in scripts (or why there is none).
func probeStarters(ctx context.Context, env *environment, scripts, why string) {
	env.DockerProbed = true
	if dockerengine.Get() == nil {
		env.DockerWhy = noDockerSupport
	} else if err := probeDocker(ctx, os.Getenv("DOCKER_HOST"), os.Getenv("DOCKER_TLS_VERIFY") != ""); err != nil {
		env.DockerWhy = err.Error()
	} else {
		env.DockerOK = true
	}
	switch {
	case scripts == "":
		env.ServerWhy = why
	default:
		if _, err := exec.LookPath("erl"); err != nil {
			env.ServerWhy = "rabbitmq-server found in " + scripts + " but erl is not in PATH"
			break
		}
		epmd, err := exec.LookPath("epmd")
		if err != nil {
			env.ServerWhy = "rabbitmq-server found in " + scripts + " but epmd is not in PATH"
			break
		}
		env.ServerPath = filepath.Join(scripts, "rabbitmq-server")
		env.EpmdPath = epmd
	}
}

// findScripts returns a RabbitMQ scripts directory: one holding
// rabbitmq-server, rabbitmqctl and rabbitmq-env, found through PATH
// (following symlinks, as Homebrew installs them) or at a known place.
func findScripts(lookPath func(string) (string, error)) (dir, why string) {
	var candidates []string
	for _, name := range []string{"rabbitmq-server", "rabbitmqctl"} {
		if p, err := lookPath(name); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				candidates = append(candidates, filepath.Dir(real))
			}
		}
	}
	candidates = append(candidates, knownScriptsDirs...)
	for _, d := range candidates {
		if isScriptsDir(d) {
			return d, ""
		}
	}
	return "", "no rabbitmq-server found (looked in PATH, /usr/sbin, " + strings.Join(knownScriptsDirs, ", ") + ")"
}

func isScriptsDir(dir string) bool {
	for _, name := range []string{"rabbitmq-server", "rabbitmqctl", "rabbitmq-env"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

func fromURL(ctx context.Context, env environment, p plan, logf func(string, ...any)) (*Broker, error) {
	uri, err := amqp.ParseURI(env.AMQPURL)
	if err != nil {
		return nil, fmt.Errorf("broker: AMQP_URL %s: %w", redact(env.AMQPURL), err)
	}
	if err := checkPort(ctx, amqpAddr(env.AMQPURL)); err != nil {
		return nil, fmt.Errorf("broker: AMQP_URL %s: %w", redact(env.AMQPURL), err)
	}
	f := &faults{noCtl: p.NoCtl, noMgmt: p.NoMgmt,
		noRestart: "only a node Find started can be restarted, and AMQP_URL names an existing broker"}
	if p.Route == routeCtl {
		f.ctl = newCtl(execRunner{path: env.CtlPath, node: env.NodeName})
	}
	if env.MgmtURL != "" {
		if f.mgmt, err = newMgmtClient(env.MgmtURL, uri.Username, uri.Password); err != nil {
			return nil, err
		}
	}
	b := newBroker(env.AMQPURL, SourceURL, f, nil)
	b.MgmtURL = env.MgmtURL
	if p.Route == routeCtl {
		b.Node = env.NodeName
	}
	via := "faults via " + p.Route
	switch p.Route {
	case routeCtl:
		via += " -n " + env.NodeName
	case routeMgmt:
		via += " " + redact(env.MgmtURL)
	}
	logf("broker: using AMQP_URL %s (%s; unavailable: %s)", redact(env.AMQPURL), via, unavailableText(f))
	return b, nil
}

func fromDocker(ctx context.Context, opts Options, logf func(string, ...any)) (*Broker, error) {
	start := time.Now()
	n, err := startDocker(ctx, opts.Image)
	if err != nil {
		return nil, err
	}
	f := &faults{ctl: newCtl(dockerRunner{c: n.c}), restart: n.c.Restart}
	f.mgmt, err = newMgmtClient(n.mgmtURL, "", "")
	if err != nil {
		_ = n.close(context.WithoutCancel(ctx))
		return nil, err
	}
	b := newBroker(n.url, SourceDocker, f, n.close)
	b.MgmtURL = n.mgmtURL
	logf("broker: using Docker container %s (%s) at %s (started in %.1fs; management API %s; unavailable: %s)",
		shortID(n.c.ID), opts.Image, b.Addr(), time.Since(start).Seconds(), redact(n.mgmtURL), unavailableText(f))
	return b, nil
}

func fromLocal(ctx context.Context, env environment, opts Options, logf func(string, ...any)) (*Broker, error) {
	swept := sweepStale()
	start := time.Now()
	n, err := startLocal(ctx, filepath.Dir(env.ServerPath), env.EpmdPath, opts, inRoot(env.Root), withConfig(opts.Config))
	if err != nil {
		return nil, err
	}
	f := &faults{ctl: newCtl(n.runner()), restart: n.restart}
	b := newBroker(n.url(), SourceLocal, f, n.close)
	b.Node = n.name
	b.Version = localVersion(env)
	mgmt := "management API off"
	if opts.Management {
		b.MgmtURL = n.mgmtURL()
		if f.mgmt, err = newMgmtClient(b.MgmtURL, "", ""); err != nil {
			return nil, errors.Join(err, n.close(context.WithoutCancel(ctx)))
		}
		mgmt = "management API " + redact(b.MgmtURL)
	}
	if opts.TLS != nil {
		b.TLSURL = n.tlsURL()
		mgmt += "; TLS on " + amqpAddr(b.TLSURL)
	}
	logf("broker: using local RabbitMQ %s node %s on %s (%s; started in %.1fs; %s; epmd on 127.0.0.1:%d; data in %s%s)",
		b.Version, n.name, b.Addr(), rootText(env.Root), time.Since(start).Seconds(), mgmt, n.epmdPort, n.dir, sweptText(swept))
	return b, nil
}

func sweptText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; removed %d stale node directories of test binaries that died", n)
}

// unavailableText lists the faults f cannot inject, and why, for the log.
func unavailableText(f *faults) string {
	u := f.unavailable()
	if len(u) == 0 {
		return "none"
	}
	why := f.noRestart
	if f.ctl == nil {
		why = f.noCtl + "; " + why
	}
	return strings.Join(u, ", ") + " (" + why + ")"
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
