package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestFailoverWhenNodeKilled kills (SIGKILL) the node the supervisor is on:
// it must be Ready on another node at once, not wait for the dead one, and
// the killed node must rejoin the cluster when it boots again.
func TestFailoverWhenNodeKilled(t *testing.T) {
	c := broker.SharedCluster(t)
	s, rec := start(t, conn.Options{URLs: c.URLs(), Reconnect: fastPolicy()})
	up, next := rec.WaitFor(t, 0, defaultTestTimeout, "Connected", kind(conn.EventConnected))
	victim := nodeOf(t, c, up)
	startAtCleanup(t, c, victim)

	killed := time.Now()
	if err := c.KillNode(faultCtx(t), victim); err != nil {
		t.Fatal(err)
	}
	f, after := awaitFailover(t, c, rec, next, victim, killed)
	t.Logf("SIGKILL failover %v", f)
	// The next dial went to another node: the dead one waits at the back.
	for _, e := range rec.Snapshot()[next:after] {
		if e.Kind == conn.EventDialFailed && c.NodeIndex(e.URL) == victim {
			t.Errorf("dialed the killed node %d before failing over: %v", victim, e.Err)
		}
	}

	// The new connection works.
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	ch, err := s.Channel(ctx)
	if err != nil {
		t.Fatalf("Channel after failover: %v", err)
	}
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Errorf("declare on node %d after failover: %v", f.to, err)
	}
	ch.Close()

	booted := time.Now()
	if err := c.StartNode(faultCtx(t), victim); err != nil {
		t.Fatalf("booting the killed node again: %v", err)
	}
	t.Logf("killed node %d booted again in %v", victim, time.Since(booted).Round(time.Millisecond))
	if n := runningNodes(t, c, victim); n != len(c.Nodes) {
		t.Errorf("node %d sees %d running nodes after its reboot, want %d", victim, n, len(c.Nodes))
	}
	if got := s.State(); got != conn.Ready {
		t.Errorf("state %v after the killed node came back, want Ready", got)
	}
}
