package main

import (
	"testing"
	"time"
)

// TestBenchConsumeRate checks that the consume rate counts the deliveries
// after the first over the time from the first to the last, and leaves the
// time to the first delivery (set-up) out.
func TestBenchConsumeRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  workerResult
		want float64
	}{
		{"set-up left out", workerResult{Messages: 1001, ConsumeNS: int64(time.Second), SubscribeNS: int64(5 * time.Second)}, 1000},
		{"no set-up", workerResult{Messages: 501, ConsumeNS: int64(250 * time.Millisecond)}, 2000},
		{"one message", workerResult{Messages: 1, ConsumeNS: 0}, 0},
		{"no time", workerResult{Messages: 10, ConsumeNS: 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := benchConsumeRate(&tc.res); got != tc.want {
				t.Errorf("benchConsumeRate(%+v) = %v, want %v", tc.res, got, tc.want)
			}
		})
	}
}
