package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func testBenchConfig() benchConfig {
	return benchConfig{
		scenarios:       benchScenarios,
		runs:            3,
		tpContenders:    []string{contRaw, contWarren},
		idleFor:         10 * time.Second,
		idleRuns:        3,
		kills:           10,
		detections:      3,
		detectHeartbeat: time.Second,
		lossN:           5000,
		killEvery:       700 * time.Millisecond,
		command:         "warren bench",
	}
}

func metric(scen, cont string, run int, kv ...any) benchSample {
	s := benchSample{Scenario: scen, Contender: cont, Run: run, Metrics: map[string]float64{}}
	for i := 0; i < len(kv); i += 2 {
		s.Metrics[kv[i].(string)] = kv[i+1].(float64)
	}
	return s
}

func findRow(t *testing.T, rep *benchReport, metricName, figurePrefix string) benchRow {
	t.Helper()
	for _, r := range rep.Rows {
		if r.Metric == metricName && strings.HasPrefix(r.Figure, figurePrefix) {
			return r
		}
	}
	t.Fatalf("no row %s %q", metricName, figurePrefix)
	return benchRow{}
}

func TestBuildReportRatiosAndVerdicts(t *testing.T) {
	samples := []benchSample{
		// throughput: the ratio pairs runs: 900/1000, 950/1200, 1100/800
		// have the median 0.9 (missed), though the medians' ratio is 0.95.
		metric(scenThroughput, contRaw, 1, "publish_rate", 1000.0, "consume_rate", 2000.0),
		metric(scenThroughput, contWarren, 1, "publish_rate", 900.0, "consume_rate", 1000.0),
		metric(scenThroughput, contRaw, 2, "publish_rate", 1200.0, "consume_rate", 2000.0),
		metric(scenThroughput, contWarren, 2, "publish_rate", 950.0, "consume_rate", 1000.0),
		metric(scenThroughput, contRaw, 3, "publish_rate", 800.0, "consume_rate", 2000.0, "subscribe_ms", 10.0),
		metric(scenThroughput, contWarren, 3, "publish_rate", 1100.0, "consume_rate", 1000.0, "subscribe_ms", 40.0),
		// outage: the best baseline is naive (lower is better).
		metric(scenOutage, contNaive, 1, "outage_ms", 40.0),
		metric(scenOutage, contNaive, 2, "outage_ms", 20.0),
		metric(scenOutage, contRecovery, 1, "outage_ms", 5000.0),
		metric(scenOutage, contWarren, 1, "outage_ms", 10.0),
		metric(scenOutage, contWarren, 2, "outage_ms", 30.0),
		// detection: warren 800 over the best baseline 1000 is 0.8, missed.
		metric(scenDetection, contNaive, 1, "detect_ms", 1500.0),
		metric(scenDetection, contRecovery, 1, "detect_ms", 1000.0),
		metric(scenDetection, contWarren, 1, "detect_ms", 800.0),
		// idle: one failed raw run and one good one.
		{Scenario: scenIdle, Contender: contRaw, Run: 1, Err: "worker crashed"},
		metric(scenIdle, contRaw, 2, "cpu_ms", 2.0, "ctxsw", 10.0),
		metric(scenIdle, contWarren, 1, "cpu_ms", 2.2, "ctxsw", 30.0),
		// loss: warren lost nothing.
		metric(scenLoss, contNaive, 1, "lost", 3.0, "lost_confirmed", 0.0),
		metric(scenLoss, contWarren, 1, "lost", 0.0, "lost_confirmed", 1.0),
	}
	rep := buildReport(benchEnv{}, testBenchConfig(), samples)

	tests := []struct {
		metric, figure string
		values         map[string]float64
		baseline       string
		ratio          float64
		met            string // "met", "missed" or "none"
	}{
		{"publish_rate", "publish", map[string]float64{contRaw: 1000, contWarren: 950}, contRaw, 0.9, "missed"},
		{"consume_rate", "consume", map[string]float64{contRaw: 2000, contWarren: 1000}, contRaw, 0.5, "missed"},
		{"subscribe_ms", "subscribe", map[string]float64{contRaw: 10, contWarren: 40}, contRaw, 4, "none"},
		{"outage_ms", "kill → publishable again, median", map[string]float64{contNaive: 30, contRecovery: 5000, contWarren: 20}, contNaive, 20.0 / 30, "met"},
		{"outage_ms", "kill → publishable again, max", map[string]float64{contNaive: 40, contRecovery: 5000, contWarren: 30}, contNaive, 0.75, "met"},
		{"detect_ms", "blackhole", map[string]float64{contNaive: 1500, contRecovery: 1000, contWarren: 800}, contRecovery, 0.8, "missed"},
		{"cpu_ms", "CPU", map[string]float64{contRaw: 2, contWarren: 2.2}, contRaw, 1.1, "met"},
		{"lost", "lost (of 5000)", map[string]float64{contNaive: 3, contWarren: 0}, "", 0, "met"},
		{"lost_confirmed", "lost although", map[string]float64{contNaive: 0, contWarren: 1}, "", 0, "missed"},
	}
	for _, tt := range tests {
		t.Run(tt.metric+"/"+tt.figure, func(t *testing.T) {
			row := findRow(t, rep, tt.metric, tt.figure)
			if len(row.Values) != len(tt.values) {
				t.Errorf("values %v, want %v", row.Values, tt.values)
			}
			for c, want := range tt.values {
				if got, ok := row.Values[c]; !ok || math.Abs(got-want) > 1e-9 {
					t.Errorf("%s = %v (present %v), want %v", c, got, ok, want)
				}
			}
			if row.Baseline != tt.baseline || math.Abs(row.Ratio-tt.ratio) > 1e-9 {
				t.Errorf("ratio %v× %q, want %v× %q", row.Ratio, row.Baseline, tt.ratio, tt.baseline)
			}
			got := "none"
			if row.Met != nil {
				got = map[bool]string{true: "met", false: "missed"}[*row.Met]
			}
			if got != tt.met {
				t.Errorf("verdict %s, want %s (target %q)", got, tt.met, row.Target)
			}
		})
	}
	if got := findRow(t, rep, "cpu_ms", "CPU").Failed[contRaw]; got != 1 {
		t.Errorf("failed raw idle runs = %d, want 1", got)
	}
}

func TestBuildReportSkipsScenariosNotRun(t *testing.T) {
	cfg := testBenchConfig()
	cfg.scenarios = []string{scenIdle}
	rep := buildReport(benchEnv{}, cfg, nil)
	for _, r := range rep.Rows {
		if r.Scenario != scenIdle {
			t.Errorf("row %s/%s of a scenario not run", r.Scenario, r.Metric)
		}
	}
	if len(rep.Rows) == 0 {
		t.Fatal("no idle rows")
	}
	if r := rep.Rows[0]; len(r.Values) != 0 || r.Met != nil {
		t.Errorf("row without samples has values %v, verdict %v", r.Values, r.Met)
	}
}

func TestWriteMarkdown(t *testing.T) {
	samples := []benchSample{
		metric(scenThroughput, contRaw, 1, "publish_rate", 12345.6, "consume_rate", 20000.0),
		metric(scenThroughput, contWarren, 1, "publish_rate", 11000.0, "consume_rate", 21000.0),
		{Scenario: scenOutage, Contender: contRecovery, Run: 1, Err: "no up"},
		metric(scenOutage, contNaive, 1, "outage_ms", 30.0),
		metric(scenOutage, contWarren, 1, "outage_ms", 12.5),
	}
	cfg := testBenchConfig()
	cfg.scenarios = []string{scenThroughput, scenOutage}
	cfg.runs = 1
	rep := buildReport(benchEnv{CPUs: 2, Command: "warren bench -json x"}, cfg, samples)
	rep.Elapsed = 5*time.Minute + 12*time.Second
	var b bytes.Buffer
	rep.writeMarkdown(&b)
	out := b.String()
	for _, want := range []string{
		"| Scenario | Figure | raw | naive | recovery | warren | warren ÷ baseline | Target | Result |",
		"|---|---|---:|---:|---:|---:|---|---|---|",
		"| throughput | publish with confirms, median of 1 (msg/s) | 12,346 | — | — | 11,000 | 0.89× raw (paired runs) | ≥ 0.95× | **MISSED** |",
		"| throughput | consume and ack, median of 1 (msg/s) | 20,000 | — | — | 21,000 | 1.05× raw (paired runs) | ≥ 0.95× | met |",
		"| outage | kill → publishable again, median of 10 kills (ms) | — | 30.0 | failed | 12.5 | 0.42× naive | ≤ 0.75× | met |",
		"- Command: `warren bench -json x`",
		"- Run time: 5m12s",
		"- 1 runs failed",
	} {
		if !strings.Contains(out, want+"") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatFigure(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{12345.6, "msg/s", "12,346"},
		{999, "msg/s", "999"},
		{1234567, "count", "1,234,567"},
		{0, "count", "0"},
		{5224.4, "ms", "5,224"},
		{30.25, "ms", "30.2"},
		{1.678, "ms", "1.68"},
		{-1500, "ms", "-1,500"},
	}
	for _, tt := range tests {
		if got := formatFigure(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatFigure(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestWriteJSONLines(t *testing.T) {
	samples := []benchSample{metric(scenIdle, contRaw, 1, "cpu_ms", 1.5, "ctxsw", 12.0)}
	cfg := testBenchConfig()
	cfg.scenarios = []string{scenIdle}
	rep := buildReport(benchEnv{RabbitMQ: "3.10.8"}, cfg, samples)
	rep.Elapsed = 90 * time.Second
	var b bytes.Buffer
	if err := rep.writeJSONLines(&b); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		kind, _ := line["kind"].(string)
		kinds[kind]++
		switch kind {
		case "env":
			if line["rabbitmq"] != "3.10.8" {
				t.Errorf("env line %v", line)
			}
		case "run":
			if line["elapsed_s"] != 90.0 {
				t.Errorf("run line %v", line)
			}
		}
	}
	want := map[string]int{"env": 1, "sample": 1, "row": len(rep.Rows), "run": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %q lines, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
}
