package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRenderBenchRoundTrip(t *testing.T) {
	cfg := testBenchConfig()
	samples := []benchSample{
		metric(scenOutage, contNaive, 1, "outage_ms", 20.0),
		metric(scenOutage, contWarren, 1, "outage_ms", 10.0),
	}
	rep := buildReport(benchEnv{RabbitMQ: "3.10.8"}, cfg, samples)
	rep.Elapsed = 90 * time.Second
	path := filepath.Join(t.TempDir(), "run.jsonl")
	if err := writeBenchJSON(path, rep); err != nil {
		t.Fatal(err)
	}
	got, err := renderBench(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.Env.RabbitMQ != "3.10.8" || len(got.Samples) != 2 || got.Elapsed != rep.Elapsed {
		t.Fatalf("rendered %+v, want the run's env, 2 samples and its run time", got)
	}
	row := findRow(t, got, "outage_ms", "kill → publishable again, median")
	if row.Ratio != 0.5 {
		t.Errorf("ratio %v, want 0.5", row.Ratio)
	}
	if _, err := renderBench(filepath.Join(t.TempDir(), "missing"), cfg); err == nil {
		t.Error("renderBench(missing file) = nil error")
	}
	if err := os.WriteFile(path, []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := renderBench(path, cfg); err == nil {
		t.Error("renderBench(garbage) = nil error")
	}
}
