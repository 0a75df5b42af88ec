package main

import (
	"strings"
	"testing"
)

// TestFleetRows: the fleet's memory and idle samples of raw and warren
// become one row per figure, with warren's ratio to raw and issue 18's
// targets: at most 1.1× raw idle, 1.5× heap, 1.3× RSS, 5 goroutines.
func TestFleetRows(t *testing.T) {
	cfg := testBenchConfig()
	cfg.fleetN, cfg.fleetRuns = 500, 2
	samples := []benchSample{
		metric(scenFleet, contRaw, 1, "heap_kib_conn", 20.0, "rss_kib_conn", 40.0, "goroutines_conn", 3.0),
		metric(scenFleet, contWarren, 1, "heap_kib_conn", 28.0, "rss_kib_conn", 60.0, "goroutines_conn", 5.0),
		metric(scenFleet, contRaw, 1, "idle_cpu_ms", 10.0, "idle_nvcsw", 300.0),
		metric(scenFleet, contWarren, 1, "idle_cpu_ms", 10.0, "idle_nvcsw", 400.0),
		metric(scenFleet, contRaw, 2, "idle_cpu_ms", 12.0, "idle_nvcsw", 300.0),
		metric(scenFleet, contWarren, 2, "idle_cpu_ms", 12.0, "idle_nvcsw", 400.0),
	}
	rep := buildReport(benchEnv{}, cfg, samples)
	for _, tc := range []struct {
		metric string
		ratio  float64
		met    bool
	}{
		{"idle_cpu_ms", 1.0, true},
		{"idle_nvcsw", 400.0 / 300, false},
		{"heap_kib_conn", 1.4, true},
		{"rss_kib_conn", 1.5, false},
		{"goroutines_conn", 5.0 / 3, true},
	} {
		r := findRow(t, rep, tc.metric, "")
		if r.Scenario != scenFleet || r.Baseline != contRaw || r.Met == nil {
			t.Fatalf("%s: row %+v, want a fleet row against raw with a verdict", tc.metric, r)
		}
		if d := r.Ratio - tc.ratio; d > 1e-9 || d < -1e-9 || *r.Met != tc.met {
			t.Errorf("%s: ratio %.3f met %v, want %.3f met %v", tc.metric, r.Ratio, *r.Met, tc.ratio, tc.met)
		}
		if strings.Contains(r.Figure, "fleet of") != strings.Contains(tc.metric, "conn") {
			t.Errorf("%s: figure %q does not say what it measured", tc.metric, r.Figure)
		}
	}
}

// TestBenchRSS: the resident set is read where /proc exists.
func TestBenchRSS(t *testing.T) {
	if rss := benchRSS(); rss <= 0 {
		t.Skipf("no /proc/self/statm here (got %d)", rss)
	}
}
