// Package cluster_test runs conn.Supervisor against a real 3-node RabbitMQ
// cluster with quorum queues: failover when the node warren is connected to
// stops or dies, no confirmed message lost, consumers resuming on a
// surviving node, and a whole cluster down.
package cluster_test

import (
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

// clusterSize is three: a quorum queue keeps a majority after one node loss.
const clusterSize = 3

func TestMain(m *testing.M) { broker.ClusterMain(m, clusterSize) }
