package main

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	tests := []struct {
		name          string
		elapsed       time.Duration
		rate, sent    int
		publish, skip int
	}{
		{"on time", time.Second, 200, 199, 1, 0},
		{"ahead", time.Second, 200, 250, 0, 0},
		{"a tick's worth", 100 * time.Millisecond, 200, 0, 20, 0},
		{"behind within the lag", time.Second, 200, 170, 30, 0},
		{"behind after an outage: skip, do not burst", 5 * time.Second, 200, 200, 40, 760},
		{"slow rate publishes at least one", 10 * time.Second, 1, 0, 1, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			publish, skip := demoDue(tt.elapsed, tt.rate, tt.sent)
			if publish != tt.publish || skip != tt.skip {
				t.Errorf("due(%v, %d, %d) = %d, %d; want %d, %d", tt.elapsed, tt.rate, tt.sent, publish, skip, tt.publish, tt.skip)
			}
		})
	}
}

func TestPacerTick(t *testing.T) {
	tests := []struct {
		rate int
		want time.Duration
	}{
		{1, demoMaxTick},
		{20, 50 * time.Millisecond},
		{200, demoMinTick},
		{100000, demoMinTick},
	}
	for _, tt := range tests {
		if got := demoPacerTick(tt.rate); got != tt.want {
			t.Errorf("pacerTick(%d) = %v, want %v", tt.rate, got, tt.want)
		}
	}
}
