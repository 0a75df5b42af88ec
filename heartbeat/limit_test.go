package heartbeat

import (
	"errors"
	"testing"
	"time"
)

func TestCheckLimit(t *testing.T) {
	tests := []struct {
		name      string
		limit     time.Duration
		heartbeat time.Duration
		wantErr   bool
	}{
		{"zero limit", 0, 10 * time.Second, true},
		{"negative limit", -time.Second, 10 * time.Second, true},
		{"negative heartbeat", time.Second, -time.Second, true},
		{"heartbeats disabled, any positive limit", time.Nanosecond, 0, false},
		{"heartbeats disabled, zero limit", 0, 0, true},
		{"at heartbeat/2 would kill idle peers", 5 * time.Second, 10 * time.Second, true},
		{"3/4 misjudges the gap after traffic", 7500 * time.Millisecond, 10 * time.Second, true},
		{"one heartbeat leaves no slack", 10 * time.Second, 10 * time.Second, true},
		{"just below 5/4", 12499 * time.Millisecond, 10 * time.Second, true},
		{"exactly 5/4", 12500 * time.Millisecond, 10 * time.Second, false},
		{"amqp091-go's own 3/2", 15 * time.Second, 10 * time.Second, false},
		{"odd nanoseconds", 5, 4, false},
		{"odd nanoseconds below", 4, 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLimit(tc.limit, tc.heartbeat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckLimit(%v, %v) = %v, want error: %v", tc.limit, tc.heartbeat, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidLimit) {
				t.Errorf("CheckLimit(%v, %v) = %v, want it to wrap ErrInvalidLimit", tc.limit, tc.heartbeat, err)
			}
		})
	}
}

func TestRecommendedLimit(t *testing.T) {
	tests := []struct {
		heartbeat, want time.Duration
	}{
		{0, 0},
		{-time.Second, 0},
		{2 * time.Second, 2500 * time.Millisecond},
		{4 * time.Second, 5 * time.Second},
		{10 * time.Second, 12500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.heartbeat.String(), func(t *testing.T) {
			got := RecommendedLimit(tc.heartbeat)
			if got != tc.want {
				t.Fatalf("RecommendedLimit(%v) = %v, want %v", tc.heartbeat, got, tc.want)
			}
			if got > 0 && CheckLimit(got, tc.heartbeat) != nil {
				t.Errorf("CheckLimit rejects RecommendedLimit(%v)", tc.heartbeat)
			}
			// A healthy broker may be silent for a whole heartbeat.
			if got > 0 && got <= tc.heartbeat {
				t.Errorf("RecommendedLimit(%v) = %v leaves no slack over one heartbeat", tc.heartbeat, got)
			}
		})
	}
}

func TestIdleLimit(t *testing.T) {
	for _, tc := range []struct{ heartbeat, want time.Duration }{
		{0, 0}, {time.Second, 750 * time.Millisecond}, {10 * time.Second, 7500 * time.Millisecond},
	} {
		if got := IdleLimit(tc.heartbeat); got != tc.want {
			t.Errorf("IdleLimit(%v) = %v, want %v", tc.heartbeat, got, tc.want)
		}
		// The idle cadence is one frame per heartbeat/2: the limit must exceed it.
		if tc.heartbeat > 0 && IdleLimit(tc.heartbeat) <= tc.heartbeat/2 {
			t.Errorf("IdleLimit(%v) does not exceed the idle cadence", tc.heartbeat)
		}
	}
}
