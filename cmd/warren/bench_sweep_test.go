package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSweepPlan(t *testing.T) {
	cells := sweepCells(sweepKindsDefault, []time.Duration{time.Second, 5 * time.Second})
	if got, want := len(cells), 5; got != want { // one kill cell, two each for stop_app and partition
		t.Fatalf("%d cells, want %d: %v", got, want, cells)
	}
	plan := sweepPlan(cells, 3, 2*time.Second, 20*time.Second, 15)
	if len(plan) != 15 {
		t.Fatalf("%d faults, want 15", len(plan))
	}
	reps := map[string]int{}
	for _, f := range plan {
		reps[f.cell()]++
		if f.health < 2*time.Second || f.health > 20*time.Second {
			t.Errorf("health %v outside [2s, 20s]", f.health)
		}
	}
	for c, n := range reps {
		if n != 3 {
			t.Errorf("cell %s has %d faults, want 3", c, n)
		}
	}
	again := sweepPlan(cells, 3, 2*time.Second, 20*time.Second, 15)
	for i := range plan {
		if plan[i] != again[i] {
			t.Fatalf("the same seed gave a different plan at %d: %+v and %+v", i, plan[i], again[i])
		}
	}
}

func TestSweepBounds(t *testing.T) {
	for _, tt := range []struct {
		f, med, max time.Duration
	}{
		{0, time.Second, 2 * time.Second},
		{5 * time.Second, time.Second, 2 * time.Second},
		{15 * time.Second, 3 * time.Second, 5250 * time.Millisecond},
		{time.Minute, 12 * time.Second, 21 * time.Second},
	} {
		med, mx := sweepBounds(tt.f)
		if med != tt.med || mx != tt.max {
			t.Errorf("sweepBounds(%v) = %v, %v; want %v, %v", tt.f, med, mx, tt.med, tt.max)
		}
	}
}

func TestSweepOutcome(t *testing.T) {
	ms := int64(time.Millisecond)
	lost := func(at int64) benchMsg { return benchMsg{Type: wmLost, T: at * ms} }
	up := func(at int64) benchMsg { return benchMsg{Type: wmUp, T: at * ms} }
	tests := []struct {
		name   string
		events []benchMsg
		want   sweepOutcome
		err    error
	}{
		{"no loss: a partition nobody noticed", []benchMsg{lost(10), up(20)}, sweepOutcome{}, nil},
		{"one loss", []benchMsg{lost(10), up(20), lost(1010), up(6200)},
			sweepOutcome{losses: 1, extra: 200 * time.Millisecond, down: 5190 * time.Millisecond}, nil},
		{"up before the probe saw the broker", []benchMsg{lost(1010), up(5990)},
			sweepOutcome{losses: 1, down: 4980 * time.Millisecond}, nil},
		{"a flap after the fault counts until the last up", []benchMsg{lost(1010), up(6010), lost(6050), up(7000)},
			sweepOutcome{losses: 2, extra: time.Second, down: 5990 * time.Millisecond}, nil},
		{"still down", []benchMsg{lost(1010)}, sweepOutcome{losses: 1}, errSweepStillDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sweepOutcomeOf(tt.events, 1000*ms, 6000*ms)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("sweepOutcomeOf = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestSweepRows(t *testing.T) {
	cfg := testBenchConfig()
	cfg.sweepKinds, cfg.sweepDurations, cfg.sweepReps = []string{sweepKill, sweepStopApp}, []time.Duration{5 * time.Second}, 3
	samples := []benchSample{
		metric(sweepCell(sweepStopApp, 5*time.Second), contNaive, 1, "extra_ms", 500.0),
		metric(sweepCell(sweepStopApp, 5*time.Second), contWarren, 1, "extra_ms", 250.0),
		metric(sweepCell(sweepStopApp, 5*time.Second), contWarren, 2, "extra_ms", 2500.0),
		metric(sweepCell(sweepStopApp, 5*time.Second), contWarren, 3, "extra_ms", 300.0),
	}
	rep := buildReport(benchEnv{}, cfg, samples)
	med := findRow(t, rep, "extra_ms", "stop_app 5s: fault end → up, median")
	if med.Met == nil || !*med.Met || med.Ratio != 0.6 || !strings.Contains(med.Target, "1,000") {
		t.Errorf("median row %+v: want met at 300 ms ≤ 1,000 ms, 0.6× naive", med)
	}
	mx := findRow(t, rep, "extra_ms", "stop_app 5s: fault end → up, max")
	if mx.Met == nil || *mx.Met {
		t.Errorf("max row %+v: want missed at 2,500 ms > 2,000 ms", mx)
	}
	findRow(t, rep, "extra_ms", "kill: fault end")
	cfg.scenarios = []string{scenOutage}
	for _, r := range buildReport(benchEnv{}, cfg, samples).Rows {
		if r.Metric == "extra_ms" {
			t.Errorf("sweep row %q without the sweep scenario", r.Figure)
		}
	}
}

func TestSweepFaultLength(t *testing.T) {
	stop := sweepCell(sweepStopApp, 5*time.Second)
	part := sweepCell(sweepPartition, 5*time.Second)
	samples := []benchSample{
		// stop_app: from the first loss to the fault's end, per repetition.
		metric(stop, contNaive, 1, "fault_ms", 9000.0, "down_ms", 8400.0, "extra_ms", 400.0, "losses", 1.0),
		metric(stop, contWarren, 1, "fault_ms", 9000.0, "down_ms", 8300.0, "extra_ms", 200.0, "losses", 1.0),
		metric(stop, contWarren, 2, "fault_ms", 7000.0, "down_ms", 6500.0, "extra_ms", 500.0, "losses", 1.0),
		metric(stop, contWarren, 3, "fault_ms", 7000.0, "down_ms", 7500.0, "extra_ms", 500.0, "losses", 1.0),
		// partition: the hold, whether or not anyone noticed.
		metric(part, contNaive, 1, "fault_ms", 5001.0, "losses", 0.0),
	}
	if got, want := sweepFaultLength(samples, stop), 7*time.Second; got != want {
		t.Errorf("stop_app fault length = %v, want %v (median of 8.1, 6 and 7 s)", got, want)
	}
	if got, want := sweepFaultLength(samples, part), 5001*time.Millisecond; got != want {
		t.Errorf("partition fault length = %v, want %v", got, want)
	}
}
