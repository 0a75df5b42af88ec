package main

import (
	"context"
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	p := benchPacer{start: time.Now().Add(-time.Second), interval: 100 * time.Millisecond}
	tests := []struct {
		i   int
		due bool
	}{{0, true}, {9, true}, {10, true}, {12, false}, {100, false}}
	for _, tt := range tests {
		if got := p.due(tt.i); got != tt.due {
			t.Errorf("due(%d) = %v, want %v", tt.i, got, tt.due)
		}
	}
	if d := newBenchPacer(0).until(1000); d > 0 {
		t.Errorf("rate 0 (unpaced) makes message 1000 wait %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.wait(ctx, 100); err == nil {
		t.Error("wait for a message 9 s away returned nil on a cancelled context")
	}
	if err := p.wait(context.Background(), 5); err != nil {
		t.Errorf("wait for a due message: %v", err)
	}
}
