package broker

import (
	"fmt"
	"os"
	"path/filepath"
)

// NodeLog returns the contents of node i's RabbitMQ log, for tests that
// read the broker's own account of a fault (a quorum queue's leader
// election, a channel's crash). It works on a local cluster only: a Docker
// node's log is in its container, and it returns an error wrapping
// ErrUnsupported there. The node's log directory is bound at the same path
// inside a chroot, so the path is the same for RabbitMQ 3.10 and 4.0.
func (c *Cluster) NodeLog(i int) ([]byte, error) {
	if err := c.check("NodeLog", i); err != nil {
		return nil, err
	}
	lc, ok := c.ops.(*localCluster)
	if !ok {
		return nil, fmt.Errorf("broker: NodeLog: %w on this cluster", ErrUnsupported)
	}
	n := lc.nodes[i]
	files, err := filepath.Glob(filepath.Join(n.dir, "log", "*.log"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("broker: NodeLog: no log file in %s", filepath.Join(n.dir, "log"))
	}
	for _, f := range files {
		if filepath.Base(f) == n.name+".log" {
			return os.ReadFile(f)
		}
	}
	return os.ReadFile(files[0])
}
