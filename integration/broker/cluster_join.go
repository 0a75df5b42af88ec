package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// joinOps are what a join does to node i of a cluster being formed.
type joinOps interface {
	// stopApp stops the RabbitMQ application (stop_app).
	stopApp(ctx context.Context, i int) error
	// joinTo makes the stopped node a member of first's cluster
	// (rabbitmqctl join_cluster first).
	joinTo(ctx context.Context, i int, first string) error
	// startApp starts the application again (start_app) and returns once
	// it runs.
	startApp(ctx context.Context, i int) error
	// running returns how many nodes node i sees running in its cluster.
	running(ctx context.Context, i int) (int, error)
}

// joinCluster makes nodes 1 to n-1 members of node 0's cluster (node 0 is
// called first) and checks that node 0 then sees all n running. It stops
// every joiner at once, then joins and starts them one at a time: nodes that
// join and start together race on the cluster's schema, and start_app then
// fails in mnesia. Its errors wrap ErrBootFailed.
func joinCluster(ctx context.Context, ops joinOps, n int, first string) error {
	if n == 1 {
		return nil
	}
	err := parallel(n-1, func(k int) error { return ops.stopApp(ctx, k+1) })
	for i := 1; i < n && err == nil; i++ {
		if err = ops.joinTo(ctx, i, first); err == nil {
			err = ops.startApp(ctx, i)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: joining the cluster: %w", ErrBootFailed, err)
	}
	got, err := ops.running(ctx, 0)
	if err != nil {
		return fmt.Errorf("%w: checking the cluster: %w", ErrBootFailed, err)
	}
	if got != n {
		return fmt.Errorf("%w: %s sees %d running nodes after the join, want %d", ErrBootFailed, first, got, n)
	}
	return nil
}

// ctlJoinTo is joinTo through rabbitmqctl.
func ctlJoinTo(ctx context.Context, c *ctl, first string) error {
	_, err := c.do(ctx, "", "join_cluster", first)
	return err
}

// runningNodesExpr counts the running members of a node's cluster.
const runningNodesExpr = "length(rabbit_nodes:all_running())."

// ctlRunning is running through rabbitmqctl eval.
func ctlRunning(ctx context.Context, c *ctl) (int, error) {
	out, err := c.eval(ctx, runningNodesExpr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		return 0, fmt.Errorf("broker: unexpected output %q of %s", out, runningNodesExpr)
	}
	return n, nil
}

// countNodeList counts the atoms of a printed Erlang list of node names,
// such as "['a@localhost','b@localhost']".
func countNodeList(term string) (int, error) {
	term = strings.TrimSpace(term)
	if !strings.HasPrefix(term, "[") || !strings.HasSuffix(term, "]") {
		return 0, fmt.Errorf("broker: not a list of nodes: %q", term)
	}
	inner := strings.TrimSpace(term[1 : len(term)-1])
	if inner == "" {
		return 0, nil
	}
	return strings.Count(inner, ",") + 1, nil
}
