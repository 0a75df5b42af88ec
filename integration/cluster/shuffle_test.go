package cluster_test

import (
	"fmt"
	"testing"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// shuffleFleet is how many supervisors share one URL list. With
// the default shuffle all of them land on one node of three with probability
// 3·(1/3)^12, about 2 in a million.
const shuffleFleet = 12

// TestShuffleURLsSpreadsAFleet starts a fleet of supervisors with the same
// URL list: with KeepURLOrder they all connect to the first node; by
// default, shuffled, they spread over the cluster.
func TestShuffleURLsSpreadsAFleet(t *testing.T) {
	c := broker.SharedCluster(t)
	tests := []struct {
		shuffle  bool
		minNodes int
		maxNodes int
	}{
		{false, 1, 1},
		{true, 2, len(c.Nodes)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("shuffle=%v", tt.shuffle), func(t *testing.T) {
			nodes := map[int]int{}
			for k := 0; k < shuffleFleet; k++ {
				_, rec := start(t, conn.Options{URLs: c.URLs(), KeepURLOrder: !tt.shuffle, Reconnect: fastPolicy(),
					ConnectionName: fmt.Sprintf("%s-%d", t.Name(), k)})
				up, _ := rec.WaitFor(t, 0, defaultTestTimeout, "Connected", kind(conn.EventConnected))
				nodes[nodeOf(t, c, up)]++
			}
			t.Logf("%d supervisors per node: %v", shuffleFleet, nodes)
			if len(nodes) < tt.minNodes || len(nodes) > tt.maxNodes {
				t.Errorf("the fleet is on %d nodes, want %d to %d", len(nodes), tt.minNodes, tt.maxNodes)
			}
			if !tt.shuffle && nodes[0] != shuffleFleet {
				t.Errorf("unshuffled supervisors per node %v, want all on node 0", nodes)
			}
		})
	}
}
