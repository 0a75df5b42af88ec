package cluster_test

import (
	"strings"
	"testing"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestClusterHarness checks what the other tests rely on: distinct nodes,
// each found again from the redacted URL warren reports, all members of
// one running cluster.
func TestClusterHarness(t *testing.T) {
	c := broker.SharedCluster(t)
	if len(c.Nodes) != clusterSize {
		t.Fatalf("%d nodes, want %d", len(c.Nodes), clusterSize)
	}
	seen := map[string]bool{}
	for i, b := range c.Nodes {
		if seen[b.Addr()] || seen[b.Node] {
			t.Errorf("node %d (%s on %s) is not distinct", i, b.Node, b.Addr())
		}
		seen[b.Addr()], seen[b.Node] = true, true
		if got := c.NodeIndex(conn.RedactURL(b.URL)); got != i {
			t.Errorf("NodeIndex(redacted URL of node %d) = %d", i, got)
		}
	}
	// The last node to join sees every node running.
	last := len(c.Nodes) - 1
	out, err := c.Nodes[last].Faults.Eval(faultCtx(t), "rabbit_nodes:all_running().")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.Nodes {
		if !strings.Contains(out, b.Node) {
			t.Errorf("node %d sees %s, without %s", last, out, b.Node)
		}
	}
}
