package conn

import (
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestTopologyValidate(t *testing.T) {
	q := NamedQueue("q")
	tests := []struct {
		name     string
		topology Topology
		problems int
	}{
		{"empty", Topology{}, 0},
		{"complete", Topology{
			Exchanges: []Exchange{{Name: "x"}},
			Queues:    []*Queue{q, {}},
			Bindings:  []Binding{{Queue: q, Exchange: "x", Key: "k"}},
		}, 0},
		{"exchange without name", Topology{Exchanges: []Exchange{{Kind: "topic"}}}, 1},
		{"nil queue", Topology{Queues: []*Queue{nil}}, 1},
		{"binding without queue or exchange", Topology{Bindings: []Binding{{Key: "k"}}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.topology.validate()
			if tt.problems == 0 {
				if err != nil {
					t.Fatalf("validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidTopology) {
				t.Fatalf("validate() = %v, want ErrInvalidTopology", err)
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != tt.problems {
				t.Errorf("validate() reported %d problems, want %d: %v", n, tt.problems, err)
			}
		})
	}
}

func TestTopologyCopyDefaultsAndIsolates(t *testing.T) {
	q := &Queue{}
	orig := Topology{
		Exchanges: []Exchange{{Name: "x"}, {Name: "y", Kind: amqp.ExchangeTopic}},
		Queues:    []*Queue{q},
		Bindings:  []Binding{{Queue: q, Exchange: "x"}},
	}
	cp := orig.copy()
	if cp.Exchanges[0].Kind != amqp.ExchangeDirect || cp.Exchanges[1].Kind != amqp.ExchangeTopic {
		t.Errorf("kinds = %q, %q; want direct by default and topic kept", cp.Exchanges[0].Kind, cp.Exchanges[1].Kind)
	}
	orig.Exchanges[0].Name = "changed"
	orig.Queues[0] = nil
	orig.Bindings[0].Key = "changed"
	if cp.Exchanges[0].Name != "x" || cp.Queues[0] != q || cp.Bindings[0].Key != "" {
		t.Error("the copy follows edits of the caller's slices")
	}
}

func TestQueueNames(t *testing.T) {
	c1, c2 := &amqp.Connection{}, &amqp.Connection{}
	tests := []struct {
		name     string
		queue    func() *Queue
		current  string
		on1, on2 string // "" means ErrQueueNotDeclared
	}{
		{"named", func() *Queue { return NamedQueue("orders") }, "orders", "orders", "orders"},
		{"named and declared", func() *Queue {
			q := &Queue{Name: "orders"}
			q.setDeclared("orders", c1)
			return q
		}, "orders", "orders", "orders"},
		{"server-named, not declared", func() *Queue { return &Queue{} }, "", "", ""},
		{"server-named, declared on c1", func() *Queue {
			q := &Queue{}
			q.setDeclared("amq.gen-1", c1)
			return q
		}, "amq.gen-1", "amq.gen-1", ""},
		{"server-named, redeclared on c2", func() *Queue {
			q := &Queue{}
			q.setDeclared("amq.gen-1", c1)
			q.setDeclared("amq.gen-2", c2)
			return q
		}, "amq.gen-2", "", "amq.gen-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.queue()
			if got := q.CurrentName(); got != tt.current {
				t.Errorf("CurrentName() = %q, want %q", got, tt.current)
			}
			for _, on := range []struct {
				c    *amqp.Connection
				want string
			}{{c1, tt.on1}, {c2, tt.on2}} {
				got, err := q.nameOn(on.c)
				switch {
				case on.want == "" && !errors.Is(err, ErrQueueNotDeclared):
					t.Errorf("nameOn = %q, %v; want ErrQueueNotDeclared", got, err)
				case on.want != "" && (err != nil || got != on.want):
					t.Errorf("nameOn = %q, %v; want %q", got, err, on.want)
				}
			}
		})
	}
}

func TestTopologyRejectsEmptyNamedQueues(t *testing.T) {
	for name, top := range map[string]Topology{
		"binding": {Bindings: []Binding{{Queue: NamedQueue(""), Exchange: "x"}}},
		"queue":   {Queues: []*Queue{NamedQueue("")}},
	} {
		if err := top.validate(); !errors.Is(err, ErrInvalidTopology) || !strings.Contains(err.Error(), `NamedQueue("")`) {
			t.Errorf("%s: validate = %v, want ErrInvalidTopology naming NamedQueue(\"\")", name, err)
		}
	}
	// A server-named queue is a *Queue with no name, not a NamedQueue.
	q := &Queue{}
	if err := (Topology{Queues: []*Queue{q}, Bindings: []Binding{{Queue: q, Exchange: "x"}}}).validate(); err != nil {
		t.Errorf("server-named queue and its binding: %v", err)
	}
}
