package broker

import (
	"context"
	"errors"
	"testing"
)

func TestDockerClusterNames(t *testing.T) {
	seen := map[string]bool{}
	for i := range maxClusterNodes {
		h := dockerHostName(i)
		if seen[h] {
			t.Fatalf("host name %q used twice", h)
		}
		seen[h] = true
	}
	if got := dockerHostName(0); got != "node1" {
		t.Errorf("dockerHostName(0) = %q, want node1", got)
	}
}

func TestDockerClusterKillUnsupported(t *testing.T) {
	dc := &dockerCluster{}
	err := dc.killNode(context.Background(), 0)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("killNode = %v, want ErrUnsupported", err)
	}
}
