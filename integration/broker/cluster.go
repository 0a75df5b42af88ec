package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// maxClusterNodes bounds StartCluster's n: each node is a whole Erlang VM.
const maxClusterNodes = 7

// clusterStartTimeout bounds StartCluster's boot and join when the caller's
// context allows longer.
const clusterStartTimeout = 3 * time.Minute

// Cluster is a RabbitMQ cluster started by StartCluster: Nodes[1:] joined
// Nodes[0] with join_cluster. Quorum queues need at least three nodes to
// keep a majority after one node is lost.
type Cluster struct {
	// Nodes are the cluster's nodes in join order. Each has its own URL,
	// Addr and Faults (Faults.StopApp and StartApp act on that node alone).
	// Closing a node's Broker only disables its Faults: Cluster.Close stops
	// the nodes.
	Nodes []*Broker
	// Source says how the cluster was started: SourceLocal (private nodes
	// of a local rabbitmq-server) or SourceDocker (containers on one
	// network).
	Source string

	ops       clusterOps
	closing   atomic.Bool // set by the first Close
	closeOnce sync.Once
	closed    chan struct{} // made and closed once, under closeOnce
	closeErr  error
}

// clusterOps is what a cluster's source does to its nodes. Each method is
// bounded by ctx; i is a valid index into Cluster.Nodes.
type clusterOps interface {
	stopNode(ctx context.Context, i int) error
	startNode(ctx context.Context, i int) error
	killNode(ctx context.Context, i int) error
	// close stops and deletes every node; it runs every step even when one
	// fails.
	close(ctx context.Context) error
}

// StartCluster starts a cluster of n nodes (1 to 7) for tests and returns
// once every node runs the RabbitMQ application as a member of the one
// cluster. With a Docker engine it runs n containers on one network;
// otherwise it starts n private nodes of a local rabbitmq-server, on
// loopback ports of their own, sharing one private epmd and one Erlang
// cookie in a temporary directory, so they never meet another node on this
// machine. It logs what it started once through logf, which may be nil.
// The caller must Close the Cluster. When it finds no way to start a
// cluster its error wraps ErrNoBroker; a node that does not come up gives
// an error wrapping ErrBootFailed, and nothing started is left running.
//
// AMQP_URL is ignored: it names one existing broker, not a cluster this
// package may stop nodes of.
func StartCluster(ctx context.Context, n int, logf func(format string, args ...any)) (*Cluster, error) {
	if n < 1 || n > maxClusterNodes {
		return nil, fmt.Errorf("broker: StartCluster: %d nodes; want 1 to %d", n, maxClusterNodes)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	env := describeCluster(ctx)
	// A pinned RabbitMQ release (version.go) means local nodes of it.
	if want := pinnedVersion(Options{}); want != "" {
		var err error
		if env, err = describeVersion(ctx, want); err != nil {
			return nil, err
		}
	}
	if env.DockerOK {
		c, err := startDockerCluster(ctx, n, logf)
		if err == nil || env.ServerPath == "" {
			return c, err
		}
		logf("broker: Docker engine answers but %v; trying local rabbitmq-server", err)
	}
	if env.ServerPath != "" {
		return startLocalCluster(ctx, env, n, logf)
	}
	return nil, fmt.Errorf("%w for a cluster (%s; %s)\n%s", ErrNoBroker, env.DockerWhy, env.ServerWhy, howToGetCluster)
}

// howToGetCluster is the advice printed when StartCluster finds no way.
const howToGetCluster = `to run the cluster tests, give them one of:
  - a Docker engine (testcontainers runs rabbitmq containers on one network);
  - a local rabbitmq-server: apt-get install rabbitmq-server (or run "make test-cluster",
    which installs it via scripts/ensure-rabbitmq.sh); the tests start private nodes of their own.`

// describeCluster is describe without AMQP_URL, which cannot name a cluster.
func describeCluster(ctx context.Context) environment {
	var env environment
	scripts, why := findScripts(exec.LookPath)
	probeStarters(ctx, &env, scripts, why)
	return env
}

// URLs returns the nodes' AMQP URLs in node order, with the credentials of
// an administrator user.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, b := range c.Nodes {
		urls[i] = b.URL
	}
	return urls
}

// NodeIndex returns the index in Nodes of the node whose AMQP listener is
// at the host and port of rawURL, which may be redacted (as
// conn.Event.URL is), or -1 if no node listens there.
func (c *Cluster) NodeIndex(rawURL string) int {
	addr := amqpAddr(rawURL)
	if addr == "" {
		// A redacted password ("***") is still a valid URL; anything else
		// that amqp.ParseURI refuses is not one of ours.
		return -1
	}
	for i, b := range c.Nodes {
		if sameAddr(b.Addr(), addr) {
			return i
		}
	}
	return -1
}

// sameAddr reports whether two host:port addresses are the same, taking
// localhost for 127.0.0.1.
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if ha == "localhost" {
		ha = "127.0.0.1"
	}
	if hb == "localhost" {
		hb = "127.0.0.1"
	}
	return ha == hb && pa == pb
}

// StopNode stops the RabbitMQ application on node i, as rabbitmqctl
// stop_app does: its client connections drop and new ones are refused,
// while its Erlang node stays up, so the other nodes see it leave the
// cluster. On a local cluster StopNode and StartNode call the node through
// a hidden Erlang node that lives as long as the cluster, so they take the
// time of the operation alone, not the second or more of a rabbitmqctl
// start-up.
func (c *Cluster) StopNode(ctx context.Context, i int) error {
	if err := c.check("StopNode", i); err != nil {
		return err
	}
	return c.ops.stopNode(ctx, i)
}

// StartNode brings node i back after StopNode (start_app) or KillNode (a
// new node process on the same ports and data directory, which rejoins the
// cluster), and returns once it accepts AMQP connections. On a running
// node it is a no-op start_app.
func (c *Cluster) StartNode(ctx context.Context, i int) error {
	if err := c.check("StartNode", i); err != nil {
		return err
	}
	return c.ops.startNode(ctx, i)
}

// KillNode kills node i's process with SIGKILL, as a crash or a power loss
// would: no close frames reach its clients, the other nodes see its
// distribution link drop. StartNode boots it again. On a Docker cluster it
// returns an error wrapping ErrUnsupported: there StopNode and StartNode
// stop and start the RabbitMQ application inside the container, which a
// killed container's node would not come back from.
func (c *Cluster) KillNode(ctx context.Context, i int) error {
	if err := c.check("KillNode", i); err != nil {
		return err
	}
	return c.ops.killNode(ctx, i)
}

func (c *Cluster) check(op string, i int) error {
	if c.closing.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, op)
	}
	if i < 0 || i >= len(c.Nodes) {
		return fmt.Errorf("broker: %s: node %d of a %d-node cluster", op, i, len(c.Nodes))
	}
	return nil
}

// Close stops every node and deletes what StartCluster created. Like
// Broker.Close it is idempotent: the first call starts the shutdown, which
// runs to its end (bounded by the package's own stop timeouts) even if ctx
// ends first, and every call waits for the same result until its own ctx
// is done.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.closed = make(chan struct{})
		c.closing.Store(true)
		for _, b := range c.Nodes {
			// Faults fail fast from now on rather than talk to dying nodes.
			_ = b.Close(ctx)
		}
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		go func() {
			defer cancel()
			defer close(c.closed)
			if c.ops != nil {
				c.closeErr = c.ops.close(stopCtx)
			}
		}()
	})
	select {
	case <-c.closed:
		return c.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clusterNodeBroker returns the Broker of one cluster node: its faults, and
// no stop function, as the cluster stops its nodes together.
func clusterNodeBroker(url, source, node string, f *faults) *Broker {
	b := newBroker(url, source, f, nil)
	b.Node = node
	return b
}

// parallel runs fn(i) for i in [0, n) on goroutines of their own and joins
// their errors in index order.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
