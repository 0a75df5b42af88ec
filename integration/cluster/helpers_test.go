package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 30 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang
	// VM, and a killed node boots a whole RabbitMQ).
	faultTimeout = 2 * time.Minute
	// closeTimeout bounds a supervisor's Close at cleanup.
	closeTimeout = 10 * time.Second
)

// The event recorder and its matchers are shared by every integration test
// package (see testkit).
type recorder = testkit.Recorder

var (
	newRecorder = testkit.NewRecorder
	kind        = testkit.Kind
	state       = testkit.InState
)

// start creates a supervisor with the recorder attached and closes it at
// cleanup.
func start(t testing.TB, opts conn.Options) (*conn.Supervisor, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts.OnEvent = rec.Handle
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	if opts.ConnectionName == "" {
		opts.ConnectionName = t.Name()
	}
	s, err := conn.New(opts)
	if err != nil {
		t.Fatalf("conn.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close at cleanup: %v", err)
		}
	})
	return s, rec
}

func faultCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	t.Cleanup(cancel)
	return ctx
}

// nodeOf returns the index of the node an event's URL names; it fails the
// test if the URL is none of the cluster's.
func nodeOf(t testing.TB, c *broker.Cluster, e conn.Event) int {
	t.Helper()
	i := c.NodeIndex(e.URL)
	if i < 0 {
		t.Fatalf("%s event names %q, which is no node of the cluster %v", e.Kind, e.URL, c.URLs())
	}
	return i
}

// failover is one observed move from one node to another.
type failover struct {
	from, to int
	// outage runs from the supervisor's ConnectionLost to its next
	// Connected: how long it had no connection.
	outage time.Duration
	// sinceFault runs from the start of the fault call to Connected: what a
	// caller sees, including how long the broker took to drop the
	// connection.
	sinceFault time.Duration
}

func (f failover) String() string {
	return fmt.Sprintf("node %d -> node %d: outage %v (%v after the fault started)",
		f.from, f.to, f.outage.Round(time.Millisecond), f.sinceFault.Round(time.Millisecond))
}

// awaitFailover waits, from event index from, for the loss of the
// connection to node lostNode and the next Connected, checks that the new
// node is another one, and returns the failover and the index after it.
func awaitFailover(t testing.TB, c *broker.Cluster, rec *recorder, from, lostNode int, faultAt time.Time) (failover, int) {
	t.Helper()
	lost, next := rec.WaitFor(t, from, defaultTestTimeout, "ConnectionLost", kind(conn.EventConnectionLost))
	if got := nodeOf(t, c, lost); got != lostNode {
		t.Errorf("lost the connection to node %d, want node %d", got, lostNode)
	}
	up, next := rec.WaitFor(t, next, defaultTestTimeout, "Connected", kind(conn.EventConnected))
	f := failover{from: lostNode, to: nodeOf(t, c, up), outage: up.Time.Sub(lost.Time), sinceFault: up.Time.Sub(faultAt)}
	if f.to == lostNode {
		t.Errorf("reconnected to node %d, the node that was lost", f.to)
	}
	return f, next
}

// runningNodes returns how many nodes node i sees running in its cluster.
func runningNodes(t testing.TB, c *broker.Cluster, i int) int {
	t.Helper()
	out, err := c.Nodes[i].Faults.Eval(faultCtx(t), "length(rabbit_nodes:all_running()).")
	if err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("node %d: unexpected output %q", i, out)
	}
	return n
}

// startAtCleanup makes sure the nodes are running again when the test
// ends, so the next test finds a whole cluster.
func startAtCleanup(t testing.TB, c *broker.Cluster, nodes ...int) {
	t.Cleanup(func() {
		startNodes(t, c, nodes...)
	})
}

// startNodes starts the nodes in parallel: nodes that all stopped wait for
// each other's tables on the way back up.
func startNodes(t testing.TB, c *broker.Cluster, nodes ...int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.StartNode(ctx, i)
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Errorf("starting node %d: %v", nodes[k], err)
		}
	}
}

// Shared test setup (see testkit).
var (
	fastPolicy  = testkit.FastPolicy
	quietLogger = testkit.QuietLogger
)

// errorLogger logs only errors: for tests whose every dial fails on purpose.
func errorLogger(t testing.TB) *slog.Logger { return testkit.Logger(t, slog.LevelError) }
