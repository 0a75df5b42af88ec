package conn

import (
	"fmt"
	"testing"
	"time"
)

func TestIDWindowEvictsOldestWhenFull(t *testing.T) {
	w := newIDWindow(3, 0)
	for _, id := range []string{"a", "b", "c", "a", "d"} { // "a" counted again: "b" is the oldest
		w.add(id)
	}
	if w.count("b") != 0 || w.count("a") != 2 || w.count("c") != 1 || w.count("d") != 1 {
		t.Errorf("counts a %d b %d c %d d %d; want 2 0 1 1", w.count("a"), w.count("b"), w.count("c"), w.count("d"))
	}
	if held, evicted := w.stats(); held != 3 || evicted != 1 {
		t.Errorf("stats = %d held, %d evicted; want 3, 1", held, evicted)
	}
	w.remove("a")
	if w.count("a") != 0 {
		t.Error("a removed id is still counted")
	}
}

func TestIDWindowExpires(t *testing.T) {
	now := time.Unix(0, 0)
	w := newIDWindow(10, time.Minute)
	w.now = func() time.Time { return now }
	w.add("a")
	now = now.Add(30 * time.Second)
	w.add("b")
	now = now.Add(40 * time.Second) // a is 70 s old, b 40 s
	if w.count("a") != 0 || w.count("b") != 1 {
		t.Errorf("after 70 s: a %d b %d; want 0 1", w.count("a"), w.count("b"))
	}
}

// TestIDWindowStaysBounded: ids counted again and removed leave stale refs
// behind, which compaction bounds.
func TestIDWindowStaysBounded(t *testing.T) {
	w := newIDWindow(4, 0)
	for i := 0; i < 10_000; i++ {
		id := fmt.Sprint(i % 6)
		w.add(id)
		if i%3 == 0 {
			w.remove(id)
		}
	}
	if held, _ := w.stats(); held > 4 {
		t.Errorf("%d ids held, want at most 4", held)
	}
	if len(w.order) > 2*4+16 {
		t.Errorf("order holds %d refs, want at most %d", len(w.order), 2*4+16)
	}
}
