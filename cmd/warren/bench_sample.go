package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// benchSample is one measured run of one scenario for one contender.
type benchSample struct {
	Scenario  string             `json:"scenario"`
	Contender string             `json:"contender"`
	Run       int                `json:"run"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	Err       string             `json:"error,omitempty"`
}

// describe renders the metrics for the progress log, in a stable order.
func (s benchSample) describe() string {
	keys := make([]string, 0, len(s.Metrics))
	for k := range s.Metrics {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, s.Metrics[k])
	}
	return strings.Join(parts, " ")
}

// failedBenchSample records a run that produced no figures.
func failedBenchSample(scenario, benchContender string, run int, err error) benchSample {
	return benchSample{Scenario: scenario, Contender: benchContender, Run: run, Err: err.Error()}
}

// benchMedian returns the median of xs (the mean of the middle two for an even
// count), or NaN for none.
func benchMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// benchMax returns the largest of xs, or NaN for none.
func benchMax(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Max(xs)
}

// benchSum returns the sum of xs, or NaN for none.
func benchSum(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}
