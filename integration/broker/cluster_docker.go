package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/integration/internal/dockerengine"
)

// dockerCluster is a cluster of RabbitMQ containers on one Docker network.
// Each container's host name is its network alias (node1, node2, ...), so
// its node name is rabbit@nodeK, and every node runs with one cookie.
type dockerCluster struct {
	e        dockerengine.Engine
	image    string
	network  string
	removeNw func(context.Context) error
	nodes    []*dockerengine.Container
	ctls     []*ctl
}

var _ clusterOps = (*dockerCluster)(nil)

// dockerHostName is node i's host name and network alias.
func dockerHostName(i int) string { return "node" + strconv.Itoa(i+1) }

// startDockerCluster runs n containers of the Docker path's image
// (dockerImage) on a new network, joins containers 1 to n-1 to container 0,
// and returns the cluster. On error it removes what it created.
func startDockerCluster(ctx context.Context, n int, logf func(string, ...any)) (c *Cluster, err error) {
	ctx, cancel := context.WithTimeout(ctx, clusterStartTimeout)
	defer cancel()
	e := dockerengine.Get()
	if e == nil {
		return nil, fmt.Errorf("broker: %s: %w", noDockerSupport, ErrUnsupported)
	}
	start := time.Now()
	dc := &dockerCluster{e: e, image: dockerImage("")}
	if dc.network, dc.removeNw, err = e.NewNetwork(ctx); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	cookie := randomHex(16)
	if err = dc.run(ctx, n, cookie); err == nil {
		err = dc.join(ctx)
	}
	if err == nil {
		c, err = dc.cluster(ctx)
	}
	if err != nil {
		return nil, errors.Join(err, dc.close(context.WithoutCancel(ctx)))
	}
	urls := make([]string, n)
	for i, b := range c.Nodes {
		urls[i] = redact(b.URL)
	}
	logf("broker: started %d-node cluster of Docker containers (%s) on network %s in %.1fs: %s",
		n, dc.image, dc.network, time.Since(start).Seconds(), strings.Join(urls, ", "))
	return c, nil
}

// run starts the containers one after the other: the rabbitmq module
// rewrites one shared config file in the temporary directory per Run.
func (dc *dockerCluster) run(ctx context.Context, n int, cookie string) error {
	// -setcookie rather than a cookie file: the file would need the
	// rabbitmq user's ownership inside the image.
	erlArgs := "-setcookie " + cookie
	for i := range n {
		host := dockerHostName(i)
		ctr, err := dc.e.Run(ctx, dc.image, dockerengine.RunOptions{
			Network:  dc.network,
			Hostname: host,
			Env: map[string]string{
				"RABBITMQ_NODENAME":                   "rabbit@" + host,
				"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": erlArgs,
			},
		})
		if ctr != nil {
			dc.nodes = append(dc.nodes, ctr)
			dc.ctls = append(dc.ctls, newCtl(dockerRunner{c: ctr, cookie: cookie}))
		}
		if err != nil {
			return fmt.Errorf("%w: starting container %s: %w", ErrBootFailed, host, err)
		}
	}
	return nil
}

// join makes containers 1 to n-1 members of container 0's cluster, with
// rabbitmqctl inside the containers.
func (dc *dockerCluster) join(ctx context.Context) error {
	return joinCluster(ctx, dc, len(dc.ctls), "rabbit@"+dockerHostName(0))
}

var _ joinOps = (*dockerCluster)(nil)

func (dc *dockerCluster) stopApp(ctx context.Context, i int) error {
	return dc.ctls[i].stopApp(ctx)
}

func (dc *dockerCluster) joinTo(ctx context.Context, i int, first string) error {
	return ctlJoinTo(ctx, dc.ctls[i], first)
}

func (dc *dockerCluster) startApp(ctx context.Context, i int) error {
	_, err := dc.ctls[i].do(ctx, "", "start_app")
	return err
}

func (dc *dockerCluster) running(ctx context.Context, i int) (int, error) {
	return ctlRunning(ctx, dc.ctls[i])
}

// cluster returns the Cluster of the joined containers.
func (dc *dockerCluster) cluster(ctx context.Context) (*Cluster, error) {
	c := &Cluster{Source: SourceDocker, ops: dc}
	for i, ctr := range dc.nodes {
		f := &faults{ctl: dc.ctls[i], noRestart: "a cluster's container is not restarted alone (StopNode and StartNode stop and start its application)"}
		c.Nodes = append(c.Nodes, clusterNodeBroker(ctr.AMQPURL, SourceDocker, "rabbit@"+dockerHostName(i), f))
	}
	return c, nil
}

func (dc *dockerCluster) stopNode(ctx context.Context, i int) error {
	return dc.stopApp(ctx, i)
}

func (dc *dockerCluster) startNode(ctx context.Context, i int) error {
	return dc.startApp(ctx, i)
}

func (dc *dockerCluster) killNode(context.Context, int) error {
	return fmt.Errorf("%w: KillNode: not on a Docker cluster, whose StartNode starts the RabbitMQ application in a running container (use a local cluster)", ErrUnsupported)
}

// close removes every container, then the network.
func (dc *dockerCluster) close(ctx context.Context) error {
	err := parallel(len(dc.nodes), func(i int) error {
		return terminate(ctx, dc.nodes[i])
	})
	if dc.removeNw != nil {
		if rerr := dc.removeNw(ctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("broker: %w", rerr))
		}
	}
	return err
}
