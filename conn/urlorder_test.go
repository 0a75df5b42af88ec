package conn

import (
	"reflect"
	"testing"
)

func TestURLOrderFailover(t *testing.T) {
	o := newURLOrder(3, false)
	dial := func() int { i := o.front(); o.toBack(i); return i }
	// Connected to 0; it is lost: the next round starts with 1, not 0.
	if got := dial(); got != 0 {
		t.Fatalf("first dial %d, want 0", got)
	}
	if got := dial(); got != 1 {
		t.Fatalf("after losing 0, dialed %d, want 1", got)
	}
	// 1 refused, 2 connects; when 2 is lost, 0 comes before the refusing 1.
	if got := dial(); got != 2 {
		t.Fatalf("after 1 refused, dialed %d, want 2", got)
	}
	if !reflect.DeepEqual(o.q, []int{0, 1, 2}) {
		t.Errorf("order %v, want [0 1 2]: the refusing node waits behind the others", o.q)
	}
}

func TestURLOrderShuffleIsPermutation(t *testing.T) {
	seen := map[int]bool{}
	for trial := 0; trial < 50; trial++ {
		o := newURLOrder(5, true)
		seen[o.front()] = true
		got := map[int]bool{}
		for _, v := range o.q {
			got[v] = true
		}
		if len(got) != 5 {
			t.Fatalf("shuffled order %v is not a permutation of 0..4", o.q)
		}
	}
	if len(seen) < 2 {
		t.Errorf("50 shuffles always started with the same URL")
	}
}
