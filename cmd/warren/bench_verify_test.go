package main

import "testing"

func TestTally(t *testing.T) {
	confirmed := newBenchBitset(6)
	for _, i := range []int{0, 1, 2, 4} {
		confirmed.set(i)
	}
	tests := []struct {
		name   string
		copies []int
		want   benchLossTally
	}{
		{"all once", []int{1, 1, 1, 1, 1, 1}, benchLossTally{}},
		{"duplicates", []int{1, 3, 1, 2, 1, 1}, benchLossTally{duplicates: 3}},
		{"unconfirmed lost", []int{1, 1, 1, 0, 1, 0}, benchLossTally{lost: 2}},
		{"confirmed lost", []int{0, 1, 1, 0, 0, 2}, benchLossTally{lost: 3, lostConfirmed: 2, duplicates: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := benchTally(tt.copies, confirmed); got != tt.want {
				t.Errorf("tally = %+v, want %+v", got, tt.want)
			}
		})
	}
}
