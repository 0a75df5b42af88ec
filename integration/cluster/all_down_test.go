package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/reconnect"
)

const (
	// allDownWindow is how long the whole cluster stays down while the
	// supervisor's dials are watched.
	allDownWindow = 5 * time.Second
	// closeBound bounds Close while every node refuses: nothing is left to
	// close but the wait between dials.
	closeBound = 2 * time.Second
)

// TestAllNodesDown stops the application on every node: the supervisor
// must stay Reconnecting (it never gives up by default), dial the three
// nodes under capped backoff rather than in a storm, and still Close at
// once. The cluster then comes back and a new supervisor connects.
func TestAllNodesDown(t *testing.T) {
	c := broker.SharedCluster(t)
	policy := reconnect.Policy{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond, ResetAfter: 200 * time.Millisecond}
	// A node whose application is stopping can still accept a connection
	// and then refuse the login (403 ACCESS_REFUSED, its user table going
	// down), which warren classifies as permanent; with every node stopping
	// at once a dial lands in that window now and then. The retry keeps
	// this test about backoff and Close.
	s, rec := start(t, conn.Options{URLs: c.URLs(), Reconnect: policy, RetryPermanent: true,
		Logger: errorLogger(t)})
	rec.WaitFor(t, 0, defaultTestTimeout, "Connected", kind(conn.EventConnected))

	all := make([]int, len(c.Nodes))
	for i := range all {
		all[i] = i
	}
	startAtCleanup(t, c, all...)
	downAt := time.Now()
	from := rec.Count()
	before := s.Stats()
	stopNodes(t, c, all...)
	rec.WaitFor(t, from, defaultTestTimeout, "Reconnecting", state(conn.Reconnecting))

	time.Sleep(allDownWindow)
	after := s.Stats()
	if st := s.State(); st != conn.Reconnecting {
		t.Fatalf("state %v with every node down, want Reconnecting (err %v)", st, s.Err())
	}

	// Every node is tried, and the waits between rounds are capped.
	p := policy.WithDefaults()
	maxDelay := time.Duration(float64(p.Max) * (1 + p.Jitter))
	tried := map[int]bool{}
	var delays []time.Duration
	refused := 0
	for _, e := range rec.Snapshot()[from:] {
		if e.Kind != conn.EventDialFailed {
			continue
		}
		if reconnect.IsPermanent(e.Err) {
			refused++
		}
		tried[nodeOf(t, c, e)] = true
		if e.Delay > 0 {
			delays = append(delays, e.Delay)
			if e.Delay > maxDelay {
				t.Errorf("backoff delay %v exceeds the cap %v", e.Delay, maxDelay)
			}
		}
	}
	if len(tried) != len(c.Nodes) {
		t.Errorf("dialed nodes %v while all were down, want all %d", tried, len(c.Nodes))
	}
	// A round of three refused dials takes milliseconds, so the rounds are
	// paced by the backoff: at most one per Max·(1-Jitter) once capped,
	// plus the short rounds on the way up to the cap.
	elapsed := time.Since(downAt)
	dials := after.Dials - before.Dials
	minDelay := time.Duration(float64(p.Max) * (1 - p.Jitter))
	maxRounds := uint64(elapsed/minDelay) + 8
	if maxDials := maxRounds * uint64(len(c.Nodes)); dials > maxDials {
		t.Errorf("%d dials in %v with every node down: a dial storm (want at most %d)", dials, elapsed, maxDials)
	}
	t.Logf("every node down for %v: %d dials (%d refused as permanent while a node stopped), %d backoff waits, last waits %v",
		elapsed.Round(time.Millisecond), dials, refused, len(delays), tail(delays, 4))

	closeStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close with every node down: %v", err)
	}
	took := time.Since(closeStart)
	t.Logf("Close with every node down took %v", took.Round(time.Millisecond))
	if took > closeBound {
		t.Errorf("Close took %v with every node down, want under %v", took, closeBound)
	}

	restarted := time.Now()
	startNodes(t, c, all...)
	t.Logf("whole cluster back in %v", time.Since(restarted).Round(time.Millisecond))
	_, rec2 := start(t, conn.Options{URLs: c.URLs(), Reconnect: fastPolicy(), ConnectionName: t.Name() + "-after"})
	rec2.WaitFor(t, 0, defaultTestTimeout, "Connected", kind(conn.EventConnected))
	if n := runningNodes(t, c, 0); n != len(c.Nodes) {
		t.Errorf("node 0 sees %d running nodes after the restart, want %d", n, len(c.Nodes))
	}
}

// stopNodes stops the application on the nodes in parallel.
func stopNodes(t testing.TB, c *broker.Cluster, nodes ...int) {
	t.Helper()
	ctx := faultCtx(t)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.StopNode(ctx, i)
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("stopping node %d: %v", nodes[k], err)
		}
	}
}

func tail(d []time.Duration, n int) []time.Duration {
	if len(d) > n {
		return d[len(d)-n:]
	}
	return d
}
