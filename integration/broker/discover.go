package broker

import (
	"fmt"
	"strings"
)

// How Faults reach a broker found through AMQP_URL.
const (
	routeCtl  = "rabbitmqctl"
	routeMgmt = "management API"
	routeNone = "none"
)

// environment is what Find can use, gathered by describe. choose decides
// from it alone, so the discovery order is a pure function that tests can
// drive with any environment.
type environment struct {
	AMQPURL  string // AMQP_URL
	MgmtURL  string // AMQP_MGMT_URL
	NodeName string // RABBITMQ_NODENAME
	// CtlPath is a rabbitmqctl inside a RabbitMQ scripts directory, or "".
	CtlPath string
	// DockerProbed is false when AMQP_URL made probing unnecessary.
	DockerProbed bool
	// DockerOK is whether a Docker engine answered the probe.
	DockerOK bool
	// DockerWhy says why no engine answered, when one did not.
	DockerWhy string
	// ServerPath is a rabbitmq-server inside a RabbitMQ scripts directory
	// (not a wrapper that switches user), or "".
	ServerPath string
	// EpmdPath is the epmd binary, set with ServerPath.
	EpmdPath string
	// ServerWhy says why ServerPath is empty.
	ServerWhy string
	// Root is a Debian root that ServerPath, EpmdPath and CtlPath are
	// paths in, run through chroot (see version.go); "" means the host.
	Root string
}

// plan is the path choose picked.
type plan struct {
	Source string // SourceURL, SourceDocker or SourceLocal
	// Route is how Faults reach an AMQP_URL broker: routeCtl, routeMgmt or
	// routeNone; empty for the other sources, which always use rabbitmqctl.
	Route string
	// NoCtl and NoMgmt say why a route was not available (AMQP_URL only).
	NoCtl, NoMgmt string
}

// howToGetBroker is the advice printed when no broker can be found.
const howToGetBroker = `to run the integration tests, give them a RabbitMQ broker in one of these ways:
  - set AMQP_URL=amqp://user:pass@host:5672/ (and RABBITMQ_NODENAME=rabbit@host for rabbitmqctl faults,
    or AMQP_MGMT_URL=http://user:pass@host:15672/ for management API faults);
  - run a Docker engine (testcontainers starts a rabbitmq:3.13-management container, or $WARREN_DOCKER_IMAGE;
    only in programs that import integration/broker/docker, as warren's tests and warrentest do);
  - install RabbitMQ locally: apt-get install rabbitmq-server (or run "make test", which installs it
    via scripts/ensure-rabbitmq.sh); the tests then start a private node of their own.`

// choose picks the broker source in discovery order: AMQP_URL, then a
// Docker engine, then a local rabbitmq-server. It returns an error wrapping
// ErrNoBroker, with advice, when none is available.
func choose(env environment) (plan, error) {
	if env.AMQPURL != "" {
		p := plan{Source: SourceURL, Route: routeNone}
		switch {
		case env.NodeName == "":
			p.NoCtl = "set RABBITMQ_NODENAME (and the node's Erlang cookie) for rabbitmqctl faults"
		case env.CtlPath == "":
			p.NoCtl = "RABBITMQ_NODENAME is set but no rabbitmqctl was found"
		default:
			p.Route = routeCtl
		}
		if env.MgmtURL == "" {
			p.NoMgmt = "set AMQP_MGMT_URL for management API faults"
		} else if p.Route == routeNone {
			p.Route = routeMgmt
		}
		return p, nil
	}
	if env.DockerOK {
		return plan{Source: SourceDocker}, nil
	}
	if env.ServerPath != "" {
		return plan{Source: SourceLocal}, nil
	}
	var why []string
	why = append(why, "AMQP_URL is not set")
	if env.DockerProbed {
		why = append(why, env.DockerWhy)
	}
	why = append(why, env.ServerWhy)
	return plan{}, fmt.Errorf("%w (%s)\n%s", ErrNoBroker, strings.Join(why, "; "), howToGetBroker)
}
