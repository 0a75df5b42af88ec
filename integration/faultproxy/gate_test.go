package faultproxy

import (
	"testing"
	"time"
)

func TestGateBroadcastsChanges(t *testing.T) {
	tests := []struct {
		name        string
		prepare     func(g *gate)
		change      func(g *gate)
		wantWake    bool
		wantHole    bool
		wantLatency time.Duration
	}{
		{"blackhole", func(*gate) {}, func(g *gate) { g.setBlackholed(true) }, true, true, 0},
		{"same blackhole", func(g *gate) { g.setBlackholed(true) }, func(g *gate) { g.setBlackholed(true) }, false, true, 0},
		{"latency", func(*gate) {}, func(g *gate) { g.setLatency(time.Second) }, true, false, time.Second},
		{"negative latency is zero", func(*gate) {}, func(g *gate) { g.setLatency(-time.Second) }, false, false, 0},
		{"heal", func(g *gate) { g.setBlackholed(true); g.setLatency(time.Second) }, func(g *gate) { g.heal() }, true, false, 0},
		{"heal when healthy", func(*gate) {}, func(g *gate) { g.heal() }, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			tt.prepare(g)
			before := g.snapshot()
			tt.change(g)
			select {
			case <-before.changed:
				if !tt.wantWake {
					t.Error("changed was closed by a no-op change")
				}
			default:
				if tt.wantWake {
					t.Error("changed was not closed by a change")
				}
			}
			after := g.snapshot()
			if after.blackholed != tt.wantHole || after.latency != tt.wantLatency {
				t.Errorf("state = (%v, %v), want (%v, %v)", after.blackholed, after.latency, tt.wantHole, tt.wantLatency)
			}
		})
	}
}
