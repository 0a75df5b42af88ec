package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeJoin records the join operations and fails the ones named in fail.
type fakeJoin struct {
	mu      sync.Mutex
	ops     []string
	fail    string // an op such as "start 2" to fail
	members int
}

func (f *fakeJoin) do(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	if op == f.fail {
		return errors.New("boom")
	}
	return nil
}

func (f *fakeJoin) stopApp(_ context.Context, i int) error { return f.do(fmt.Sprint("stop ", i)) }
func (f *fakeJoin) joinTo(_ context.Context, i int, first string) error {
	return f.do(fmt.Sprint("join ", i, " ", first))
}
func (f *fakeJoin) startApp(_ context.Context, i int) error { return f.do(fmt.Sprint("start ", i)) }
func (f *fakeJoin) running(_ context.Context, i int) (int, error) {
	return f.members, f.do(fmt.Sprint("running ", i))
}

func TestJoinCluster(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		fail    string
		members int
		wantErr bool
		// wantTail is the op sequence after the parallel stops.
		wantTail []string
	}{
		{"one node joins nothing", 1, "", 1, false, nil},
		{"three nodes join one at a time", 3, "", 3, false,
			[]string{"join 1 a", "start 1", "join 2 a", "start 2", "running 0"}},
		{"a failed start stops the join", 3, "start 1", 3, true, []string{"join 1 a", "start 1"}},
		{"a missing member fails the check", 3, "", 2, true,
			[]string{"join 1 a", "start 1", "join 2 a", "start 2", "running 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeJoin{fail: tt.fail, members: tt.members}
			err := joinCluster(context.Background(), f, tt.n, "a")
			if (err != nil) != tt.wantErr {
				t.Fatalf("joinCluster = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBootFailed) {
				t.Errorf("error %v does not wrap ErrBootFailed", err)
			}
			stops := tt.n - 1
			if len(f.ops) < stops {
				t.Fatalf("ops %v: want %d stops first", f.ops, stops)
			}
			for _, op := range f.ops[:stops] {
				if !strings.HasPrefix(op, "stop ") || op == "stop 0" {
					t.Errorf("ops %v: want every joiner stopped before any join", f.ops)
				}
			}
			if got := strings.Join(f.ops[stops:], ","); got != strings.Join(tt.wantTail, ",") {
				t.Errorf("ops after the stops = %s, want %s", got, strings.Join(tt.wantTail, ","))
			}
		})
	}
}

func TestCountNodeList(t *testing.T) {
	tests := []struct {
		term    string
		want    int
		wantErr bool
	}{
		{"[]", 0, false},
		{"['a@localhost']", 1, false},
		{" ['a@localhost','b@localhost','c@localhost']\n", 3, false},
		{"{badrpc,nodedown}", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.term, func(t *testing.T) {
			got, err := countNodeList(tt.term)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("countNodeList(%q) = %d, %v; want %d, error %v", tt.term, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
