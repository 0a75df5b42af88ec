package conn

import (
	"fmt"
	"testing"
)

// pubRingOf returns a ring of capacity 2 (so that tests grow and wrap it)
// holding messages with the given tags.
func pubRingOf(tags ...uint64) *publisherRing {
	r := newPublisherRing(2)
	for _, tag := range tags {
		r.push(&Confirmation{tag: tag})
	}
	return &r
}

func pubTagOf(c *Confirmation) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprint(c.tag)
}

func TestPublisherRing(t *testing.T) {
	tests := []struct {
		name     string
		tags     []uint64
		op       func(r *publisherRing) *Confirmation
		returned string // tag of the element op returns, or "nil"
		left     string // tags left, in order
	}{
		{"pop", []uint64{1, 2, 3}, (*publisherRing).pop, "1", "[2 3]"},
		{"pop empty", nil, (*publisherRing).pop, "nil", "[]"},
		{"pop back", []uint64{1, 2, 3}, (*publisherRing).popBack, "3", "[1 2]"},
		{"back", []uint64{1, 2, 3}, (*publisherRing).back, "3", "[1 2 3]"},
		{"take front", []uint64{1, 2, 3}, func(r *publisherRing) *Confirmation { return r.take(1) }, "1", "[2 3]"},
		{"take middle", []uint64{1, 2, 3}, func(r *publisherRing) *Confirmation { return r.take(2) }, "2", "[1 3]"},
		{"take last", []uint64{1, 2, 3}, func(r *publisherRing) *Confirmation { return r.take(3) }, "3", "[1 2]"},
		{"take missing", []uint64{1, 2}, func(r *publisherRing) *Confirmation { return r.take(9) }, "nil", "[1 2]"},
		{"push front", []uint64{1, 2}, func(r *publisherRing) *Confirmation {
			r.pushFront(&Confirmation{tag: 0})
			return nil
		}, "nil", "[0 1 2]"},
		{"wrap around", []uint64{1, 2, 3, 4}, func(r *publisherRing) *Confirmation {
			r.pop()
			r.pop()
			r.push(&Confirmation{tag: 5})
			r.push(&Confirmation{tag: 6})
			return r.take(5)
		}, "5", "[3 4 6]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := pubRingOf(tc.tags...)
			if got := pubTagOf(tc.op(r)); got != tc.returned {
				t.Errorf("returned %s, want %s", got, tc.returned)
			}
			var left []uint64
			n := r.len()
			for _, c := range r.drain(nil) {
				left = append(left, c.tag)
			}
			if got := fmt.Sprint(left); got != tc.left || n != len(left) {
				t.Errorf("left %s (len %d), want %s", got, n, tc.left)
			}
			if r.len() != 0 || r.pop() != nil {
				t.Error("ring not empty after drain")
			}
		})
	}
}
