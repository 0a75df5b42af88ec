package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeClusterOps records what a Cluster asks of its source.
type fakeClusterOps struct {
	mu     sync.Mutex
	calls  []string
	closes atomic.Int32
}

func (f *fakeClusterOps) record(op string, i int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprint(op, " ", i))
	return nil
}

func (f *fakeClusterOps) stopNode(_ context.Context, i int) error  { return f.record("stop", i) }
func (f *fakeClusterOps) startNode(_ context.Context, i int) error { return f.record("start", i) }
func (f *fakeClusterOps) killNode(_ context.Context, i int) error  { return f.record("kill", i) }
func (f *fakeClusterOps) close(context.Context) error {
	f.closes.Add(1)
	return nil
}

// fakeCluster returns a Cluster of nodes on the given AMQP ports of
// 127.0.0.1, with faults that need no broker.
func fakeCluster(ports ...int) (*Cluster, *fakeClusterOps) {
	ops := &fakeClusterOps{}
	c := &Cluster{Source: SourceLocal, ops: ops}
	for i, p := range ports {
		url := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", p)
		c.Nodes = append(c.Nodes, clusterNodeBroker(url, SourceLocal, fmt.Sprint("n", i), &faults{}))
	}
	return c, ops
}

func TestClusterNodeIndex(t *testing.T) {
	c, _ := fakeCluster(5001, 5002, 5003)
	tests := []struct {
		url  string
		want int
	}{
		{"amqp://guest:guest@127.0.0.1:5001/", 0},
		{"amqp://guest:***@127.0.0.1:5002/", 1}, // as conn.Event.URL shows it
		{"amqp://other:pw@localhost:5003/vhost", 2},
		{"amqp://guest:guest@127.0.0.1:5004/", -1},
		{"amqp://guest:guest@10.0.0.1:5001/", -1},
		{"not a url", -1},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if got := c.NodeIndex(tt.url); got != tt.want {
				t.Errorf("NodeIndex(%q) = %d, want %d", tt.url, got, tt.want)
			}
		})
	}
	urls := c.URLs()
	for i, u := range urls {
		if u != c.Nodes[i].URL {
			t.Errorf("URLs()[%d] = %q, want %q", i, u, c.Nodes[i].URL)
		}
	}
}

func TestClusterNodeOps(t *testing.T) {
	c, ops := fakeCluster(5001, 5002, 5003)
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func(i int) error
		i       int
		wantOp  string
		wantErr bool
	}{
		{"StopNode", func(i int) error { return c.StopNode(ctx, i) }, 1, "stop 1", false},
		{"StartNode", func(i int) error { return c.StartNode(ctx, i) }, 2, "start 2", false},
		{"KillNode", func(i int) error { return c.KillNode(ctx, i) }, 0, "kill 0", false},
		{"negative index", func(i int) error { return c.StopNode(ctx, i) }, -1, "", true},
		{"index past the end", func(i int) error { return c.KillNode(ctx, i) }, 3, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops.mu.Lock()
			before := len(ops.calls)
			ops.mu.Unlock()
			err := tt.call(tt.i)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			ops.mu.Lock()
			defer ops.mu.Unlock()
			if tt.wantOp == "" {
				if len(ops.calls) != before {
					t.Errorf("a refused call reached the nodes: %v", ops.calls[before:])
				}
				return
			}
			if len(ops.calls) != before+1 || ops.calls[before] != tt.wantOp {
				t.Errorf("calls %v, want %q last", ops.calls, tt.wantOp)
			}
		})
	}
}

func TestClusterCloseIsIdempotent(t *testing.T) {
	c, ops := fakeCluster(5001, 5002, 5003)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for k := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.Close(context.Background())
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Errorf("Close #%d: %v", k, err)
		}
	}
	if n := ops.closes.Load(); n != 1 {
		t.Errorf("the nodes were closed %d times, want once", n)
	}
	if err := c.StopNode(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("StopNode after Close = %v, want ErrClosed", err)
	}
	if err := c.Nodes[0].Faults.StopApp(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("a node's Faults after Close = %v, want ErrClosed", err)
	}
}

func TestStartClusterRejectsSize(t *testing.T) {
	for _, n := range []int{0, -1, maxClusterNodes + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c, err := StartCluster(context.Background(), n, nil)
			if c != nil || err == nil {
				t.Errorf("StartCluster(%d) = %v, %v; want an error", n, c, err)
			}
		})
	}
}

// fatalRecorder is a testing.TB whose Fatal records instead of stopping.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (f *fatalRecorder) Helper()           {}
func (f *fatalRecorder) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }

func TestSharedCluster(t *testing.T) {
	defer sharedCluster.Store(sharedCluster.Load())
	sharedCluster.Store(nil)
	rec := &fatalRecorder{TB: t}
	if c := SharedCluster(rec); c != nil || rec.fatal == "" {
		t.Errorf("SharedCluster without ClusterMain = %v, fatal %q; want a fatal error", c, rec.fatal)
	}
	want, _ := fakeCluster(5001)
	sharedCluster.Store(want)
	rec = &fatalRecorder{TB: t}
	if c := SharedCluster(rec); c != want || rec.fatal != "" {
		t.Errorf("SharedCluster = %v, fatal %q; want the stored cluster", c, rec.fatal)
	}
}
