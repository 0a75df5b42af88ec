package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// sharedCluster is the cluster ClusterMain started, for SharedCluster.
var sharedCluster atomic.Pointer[Cluster]

// ClusterMain runs a test binary's tests against one cluster of n nodes:
// call it from TestMain. Like Main it starts the cluster (bounded by
// StartCluster's own timeout), runs the tests, closes the cluster, checks
// for leaked goroutines, and exits with the tests' status, or 1 if starting,
// closing or the leak check failed; on SIGINT or SIGTERM it stops the
// cluster before exiting. Integration tests never skip.
func ClusterMain(m *testing.M, n int) {
	os.Exit(runClusterMain(m, n))
}

// SharedCluster returns the cluster ClusterMain started. It fails the test
// if the test binary's TestMain did not call ClusterMain.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	c := sharedCluster.Load()
	if c == nil {
		t.Fatal("broker.SharedCluster: no cluster; call broker.ClusterMain(m, n) from TestMain")
	}
	return c
}

func runClusterMain(m interface{ Run() int }, n int) int {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	c, err := StartCluster(sigCtx, n, logf)
	if err != nil {
		switch {
		case sigCtx.Err() != nil:
			logf("FAIL: interrupted while starting a cluster: %v", err)
		case errors.Is(err, ErrNoBroker):
			logf("FAIL: %v", err)
		default:
			logf("FAIL: could not start a %d-node RabbitMQ cluster: %v\n%s", n, err, howToGetCluster)
		}
		return 1
	}
	sharedCluster.Store(c)

	runDone := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-runDone:
		case <-sigCtx.Done():
			// Tests are still running: stop the nodes so they do not
			// outlive the binary, then exit. A second signal kills at once.
			stopSignals()
			logf("broker: interrupted; stopping the cluster")
			if err := closeCluster(c); err != nil {
				logf("FAIL: stopping the cluster: %v", err)
			}
			os.Exit(1)
		}
	}()
	code := m.Run()
	close(runDone)
	<-watcherDone
	stopSignals()

	if err := closeCluster(c); err != nil {
		logf("FAIL: stopping the cluster: %v", err)
		code = max(code, 1)
	}
	if err := goleak.Find(leakOptions(c.Nodes[0])...); err != nil {
		logf("FAIL: goroutines leaked: %v", err)
		code = max(code, 1)
	}
	return code
}

func closeCluster(c *Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), mainCloseTimeout)
	defer cancel()
	return c.Close(ctx)
}
