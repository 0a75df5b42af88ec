package reconnect

import (
	"testing"
	"time"
)

func TestJitter(t *testing.T) {
	const d = time.Second
	tests := []struct {
		name   string
		d      time.Duration
		factor float64
		r      float64
		limit  time.Duration
		want   time.Duration
	}{
		{"lowest draw", d, 0.4, 0, time.Hour, 600 * time.Millisecond},
		{"middle draw", d, 0.4, 0.5, time.Hour, d},
		{"highest draw", d, 0.4, 0.999999, time.Hour, 1399999200 * time.Nanosecond},
		{"capped at the limit", d, 0.4, 0.999999, 1200 * time.Millisecond, 1200 * time.Millisecond},
		{"zero stays zero", 0, 0.4, 0.9, time.Hour, 0},
		{"full jitter reaches zero", d, 1, 0, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jitter(tt.d, tt.factor, func() float64 { return tt.r }, tt.limit)
			if diff := got - tt.want; diff > time.Microsecond || diff < -time.Microsecond {
				t.Errorf("jitter(%v, %v, %v, %v) = %v, want %v", tt.d, tt.factor, tt.r, tt.limit, got, tt.want)
			}
		})
	}
}

func TestSystemRand(t *testing.T) {
	seen := map[float64]bool{}
	for i := 0; i < 100; i++ {
		r := systemRand()
		if r < 0 || r >= 1 {
			t.Fatalf("systemRand() = %v, want [0,1)", r)
		}
		seen[r] = true
	}
	if len(seen) < 90 {
		t.Errorf("%d distinct draws of 100", len(seen))
	}
}
