package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clusterDirPrefix starts the name of a local cluster's directory; it
// starts with nodeDirPrefix so sweepStale also removes the directories of
// clusters whose test binary died before Close.
const clusterDirPrefix = nodeDirPrefix + "cluster-"

// localCluster is a cluster of private local nodes: one directory holding
// a subdirectory per node, one epmd on a private port that every node
// registers with (Erlang finds a peer node through the epmd on its own
// port, so a cluster cannot have one epmd per node), and one Erlang cookie
// copied into every node's $HOME.
type localCluster struct {
	dir     string
	dirLock *os.File
	// epmd runs the cluster's epmd; of this localNode only the epmd fields
	// are used, so the epmd start and stop code is the single node's.
	epmd   *localNode
	nodes  []*localNode
	ctls   []*ctl
	cookie string
	id     string // random, in the node names
	// remote stops and starts the application on nodes (for the join,
	// StopNode and StartNode); nil until boot has started it.
	remote *remote
}

var _ clusterOps = (*localCluster)(nil)

// startLocalCluster starts n private nodes in parallel, joins nodes 1 to
// n-1 to node 0, and checks that node 0 sees all n running. On error
// nothing it started is left running and the directory is removed.
func startLocalCluster(ctx context.Context, env environment, n int, logf func(string, ...any)) (*Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterStartTimeout)
	defer cancel()
	swept := sweepStale()
	start := time.Now()
	lc, err := newLocalCluster(filepath.Dir(env.ServerPath), env.EpmdPath, n)
	if err == nil {
		lc.setRoot(env.Root) // version.go
	}
	if err != nil {
		return nil, err
	}
	err = lc.boot(ctx)
	booted := time.Now()
	if err == nil {
		err = lc.join(ctx)
	}
	if err != nil {
		// A failed start is cleaned up at once: the caller gets no handle
		// to do it later.
		if cerr := lc.close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	c := &Cluster{Source: SourceLocal, ops: lc}
	names := make([]string, n)
	for i, node := range lc.nodes {
		f := &faults{ctl: lc.ctls[i], restart: node.restart}
		c.Nodes = append(c.Nodes, clusterNodeBroker(node.url(), SourceLocal, node.name, f))
		names[i] = node.name + " on " + c.Nodes[i].Addr()
	}
	logf("broker: started local %d-node RabbitMQ %s cluster (%s) in %.1fs (boot %.1fs, join %.1fs): %s (epmd on 127.0.0.1:%d; data in %s%s)",
		n, localVersion(env), rootText(env.Root), time.Since(start).Seconds(), booted.Sub(start).Seconds(), time.Since(booted).Seconds(),
		strings.Join(names, ", "), lc.epmd.epmdPort, lc.dir, sweptText(swept))
	return c, nil
}

// newLocalCluster creates the cluster's directory, cookie and node
// directories; it starts nothing.
func newLocalCluster(scripts, epmdBin string, n int) (*localCluster, error) {
	dir, err := os.MkdirTemp("", clusterDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("broker: creating cluster directory: %w", err)
	}
	lc := &localCluster{dir: dir, epmd: &localNode{epmdBin: epmdBin, dir: dir}}
	if lc.dirLock, err = lockDir(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("broker: locking cluster directory: %w", err)
	}
	lc.cookie, lc.id = randomHex(16), randomHex(4)
	for i := range n {
		node := &localNode{
			scripts: scripts,
			epmdBin: epmdBin,
			dir:     filepath.Join(dir, "node"+strconv.Itoa(i+1)),
			name:    fmt.Sprintf("warren-cluster-%s-%d@localhost", lc.id, i+1),
			cookie:  lc.cookie,
			life:    make(chan struct{}, 1),
		}
		node.unlock()
		if err == nil {
			err = os.Mkdir(node.dir, 0o700)
		}
		if err == nil {
			err = node.writeStaticFiles()
		}
		lc.nodes = append(lc.nodes, node)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broker: creating node directories: %w", err), lc.close(context.Background()))
	}
	return lc, nil
}

// boot starts the cluster's epmd, then every node in parallel (a 2-core
// machine boots three nodes together in about the time of two in a row).
func (lc *localCluster) boot(ctx context.Context) error {
	if err := lc.startEpmd(ctx); err != nil {
		return err
	}
	// One call for every node's ports: separate calls could hand two nodes
	// the same port.
	ports, err := freePorts(2 * len(lc.nodes))
	if err != nil {
		return err
	}
	err = parallel(len(lc.nodes), func(i int) error {
		return lc.nodes[i].bootInCluster(ctx, ports[2*i], ports[2*i+1])
	})
	lc.ctls = make([]*ctl, len(lc.nodes))
	for i, node := range lc.nodes {
		lc.ctls[i] = newCtl(node.runner())
	}
	if err != nil {
		return err
	}
	erl, err := lc.erl()
	if err != nil {
		return fmt.Errorf("broker: remote control node: %w", err)
	}
	lc.remote, err = startRemote(ctx, lc.epmd.root, erl, lc.dir, "warren-ctl-"+lc.id+"@localhost", lc.cookie, lc.epmd.epmdPort)
	return err
}

// startEpmd starts the shared epmd, on a fresh port after a clash, and
// hands it to every node.
func (lc *localCluster) startEpmd(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		lc.epmd.epmdPort = ports[0]
		err = lc.epmd.startEpmd(ctx)
		if err == nil {
			break
		}
		_ = lc.epmd.stopEpmd()
		if !errors.Is(err, errPortInUse) || attempt == bootAttempts || ctx.Err() != nil {
			return err
		}
	}
	for _, node := range lc.nodes {
		node.epmdPort = lc.epmd.epmdPort
		// Shared, so that restart finds the node's epmd running; only the
		// cluster stops it, after every node.
		node.epmd = lc.epmd.epmd
	}
	return nil
}

// bootInCluster boots a cluster node on the cluster's epmd, retrying with
// fresh ports when another process took one first.
func (n *localNode) bootInCluster(ctx context.Context, amqpPort, distPort int) error {
	if err := n.lock(ctx); err != nil {
		return fmt.Errorf("broker: booting node %s: %w", n.name, err)
	}
	defer n.unlock()
	for attempt := 1; ; attempt++ {
		n.amqpPort, n.distPort = amqpPort, distPort
		err := n.writeClusterConfig()
		if err == nil {
			n.env = n.environ()
			err = n.bootServer(ctx)
		}
		if err == nil || !errors.Is(err, errPortInUse) || attempt == bootAttempts || ctx.Err() != nil {
			return err
		}
		_ = n.stopServer(context.WithoutCancel(ctx))
		ports, perr := freePorts(2)
		if perr != nil {
			return errors.Join(err, perr)
		}
		amqpPort, distPort = ports[0], ports[1]
	}
}

// writeClusterConfig resets the node's data (a failed attempt may have left
// a half-initialised database) and writes its port-dependent config.
func (n *localNode) writeClusterConfig() error {
	for _, sub := range []string{"mnesia", "log"} {
		if err := os.RemoveAll(filepath.Join(n.dir, sub)); err != nil {
			return fmt.Errorf("broker: resetting node directory: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "rabbitmq.conf"), []byte(n.config()), 0o600); err != nil {
		return fmt.Errorf("broker: writing rabbitmq.conf: %w", err)
	}
	return nil
}

// join forms the cluster: stop_app and start_app through the remote node,
// join_cluster through rabbitmqctl.
func (lc *localCluster) join(ctx context.Context) error {
	return joinCluster(ctx, lc, len(lc.nodes), lc.nodes[0].name)
}

var _ joinOps = (*localCluster)(nil)

func (lc *localCluster) stopApp(ctx context.Context, i int) error {
	return lc.remote.callOK(ctx, lc.nodes[i].name, "rabbit", "stop")
}

func (lc *localCluster) joinTo(ctx context.Context, i int, first string) error {
	return ctlJoinTo(ctx, lc.ctls[i], first)
}

func (lc *localCluster) startApp(ctx context.Context, i int) error {
	return lc.remote.callOK(ctx, lc.nodes[i].name, "rabbit", "start")
}

func (lc *localCluster) running(ctx context.Context, i int) (int, error) {
	out, err := lc.remote.call(ctx, lc.nodes[i].name, "rabbit_nodes", "all_running")
	if err != nil {
		return 0, err
	}
	return countNodeList(out)
}

// stopNode is stop_app (rabbit:stop/0) through the remote node.
func (lc *localCluster) stopNode(ctx context.Context, i int) error {
	return lc.stopApp(ctx, i)
}

func (lc *localCluster) startNode(ctx context.Context, i int) error {
	n := lc.nodes[i]
	if err := n.lock(ctx); err != nil {
		return fmt.Errorf("broker: StartNode: %w", err)
	}
	defer n.unlock()
	if n.server != nil && !n.server.exited() {
		// start_app through the remote node: rabbit:start/0 returns once
		// the application runs and its listeners accept.
		return lc.startApp(ctx, i)
	}
	// Killed (or crashed): a new process on the same ports and data
	// directory, which rejoins the cluster it was a member of.
	n.server = nil
	if err := n.bootServer(ctx); err != nil {
		return fmt.Errorf("broker: StartNode: %w", err)
	}
	return nil
}

func (lc *localCluster) killNode(ctx context.Context, i int) error {
	n := lc.nodes[i]
	if err := n.lock(ctx); err != nil {
		return fmt.Errorf("broker: KillNode: %w", err)
	}
	defer n.unlock()
	if n.server == nil {
		return nil
	}
	if err := n.server.kill(exitWait); err != nil {
		return fmt.Errorf("broker: KillNode: %w", err)
	}
	n.server = nil
	return nil
}

// close stops every node in parallel, then the epmd they share, then
// removes the directory; it runs every step even when one fails.
func (lc *localCluster) close(ctx context.Context) error {
	errs := []error{parallel(len(lc.nodes), func(i int) error {
		n := lc.nodes[i]
		if err := n.lock(ctx); err != nil {
			return fmt.Errorf("broker: stopping node %s: %w", n.name, err)
		}
		defer n.unlock()
		server := n.server
		if server != nil && !server.exited() && lc.remote != nil {
			// init:stop/0 through the remote node stops the VM without a
			// rabbitmqctl start-up; stopServer then only reaps it, or
			// falls back to rabbitmqctl stop and SIGKILL.
			if lc.remote.callOK(ctx, n.name, "init", "stop") == nil {
				server.waitExit(exitWait)
			}
		}
		err := n.stopServer(ctx)
		if server != nil && !server.exited() {
			err = errors.Join(err, fmt.Errorf("broker: node %s (pid %d) still running", n.name, server.cmd.Process.Pid))
		}
		n.epmd = nil
		return err
	})}
	if lc.remote != nil {
		errs = append(errs, lc.remote.close())
	}
	// epmd goes last: rabbitmqctl stop needed it to find the nodes.
	errs = append(errs, lc.epmd.stopEpmd())
	if lc.dirLock != nil {
		lc.dirLock.Close()
	}
	if err := os.RemoveAll(lc.dir); err != nil {
		errs = append(errs, fmt.Errorf("broker: removing %s: %w", lc.dir, err))
	} else if _, err := os.Stat(lc.dir); !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("broker: %s still exists after removal", lc.dir))
	}
	return errors.Join(errs...)
}
