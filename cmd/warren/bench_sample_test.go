package main

import (
	"math"
	"testing"
)

func TestAggregates(t *testing.T) {
	tests := []struct {
		name             string
		xs               []float64
		median, max, sum float64
	}{
		{"none", nil, math.NaN(), math.NaN(), math.NaN()},
		{"one", []float64{3}, 3, 3, 3},
		{"odd", []float64{5, 1, 3}, 3, 5, 9},
		{"even", []float64{4, 1, 3, 2}, 2.5, 4, 10},
	}
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			if got := benchMedian(tt.xs); !same(got, tt.median) {
				t.Errorf("median = %v, want %v", got, tt.median)
			}
			if got := benchMax(tt.xs); !same(got, tt.max) {
				t.Errorf("max = %v, want %v", got, tt.max)
			}
			if got := benchSum(tt.xs); !same(got, tt.sum) {
				t.Errorf("sum = %v, want %v", got, tt.sum)
			}
			for i := range in {
				if in[i] != tt.xs[i] {
					t.Fatalf("median reordered its input: %v", tt.xs)
				}
			}
		})
	}
}

func TestSampleDescribe(t *testing.T) {
	s := benchSample{Metrics: map[string]float64{"b": 2, "a": 1.23456}}
	if got, want := s.describe(), "a=1.235 b=2"; got != want {
		t.Errorf("describe() = %q, want %q", got, want)
	}
}
