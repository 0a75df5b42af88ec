package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchRow is one line of the results table: one figure for every
// contender that was measured, and warren's ratio to the best baseline.
type benchRow struct {
	Scenario string             `json:"scenario"`
	Figure   string             `json:"figure"`
	Metric   string             `json:"metric"`
	Unit     string             `json:"unit"`
	Values   map[string]float64 `json:"values"`           // contender → figure; absent: not measured
	Failed   map[string]int     `json:"failed,omitempty"` // contender → failed runs
	Baseline string             `json:"baseline,omitempty"`
	Ratio    float64            `json:"ratio,omitempty"`  // warren ÷ baseline (paired: median of per-run ratios)
	Paired   bool               `json:"paired,omitempty"` // Ratio is the median of per-run ratios
	Target   string             `json:"target,omitempty"`
	Met      *bool              `json:"met,omitempty"` // nil: no target, or warren not measured
}

// benchReport is a whole bench run.
type benchReport struct {
	Env     benchEnv
	Rows    []benchRow
	Samples []benchSample
	Elapsed time.Duration
}

// rowSpec says how to turn samples into a benchRow.
type rowSpec struct {
	scenario, metric, figure, unit string
	agg                            func([]float64) float64
	contenders                     []string // columns filled in
	baselines                      []string // ratio denominator: the best of these
	lowerBetter                    bool
	minRatio, maxRatio             float64 // target on warren ÷ baseline; 0: none
	zero                           bool    // target: warren's figure is 0
	maxValue                       float64 // target: warren's figure is at most this; 0: none
	// boundOf, if set, computes maxValue from the samples and says how.
	boundOf func(samples []benchSample) (bound float64, how string)
	// group is the scenario, as -scenarios names it, whose run fills the
	// row; empty means scenario itself (sweep rows each have a cell of
	// their own as scenario).
	group string
	// paired makes the ratio the median of warren's run i over the
	// baseline's run i, instead of a ratio of medians: interleaved runs i
	// ran next to each other, so the machine's drift cancels out.
	paired bool
}

// rowSpecs are the table's rows for cfg; targets are the issue's.
func rowSpecs(cfg benchConfig) []rowSpec {
	amqp091 := []string{contNaive, contRecovery}
	runs := fmt.Sprintf("median of %d", cfg.runs)
	kills := fmt.Sprintf("%d kills", cfg.kills)
	lossN := strconv.Itoa(cfg.lossN)
	specs := []rowSpec{
		{scenario: scenThroughput, metric: "publish_rate", figure: "publish with confirms, " + runs, unit: "msg/s",
			agg: benchMedian, contenders: cfg.tpContenders, baselines: []string{contRaw}, minRatio: 0.95, paired: true},
		{scenario: scenThroughput, metric: "consume_rate", figure: "consume and ack, " + runs, unit: "msg/s",
			agg: benchMedian, contenders: cfg.tpContenders, baselines: []string{contRaw}, minRatio: 0.95, paired: true},
		// Set-up, apart from the consume rate: warren's default consumer
		// declares its retry queues and opens a publisher first.
		{scenario: scenThroughput, metric: "subscribe_ms", figure: "subscribe → first delivery, " + runs, unit: "ms",
			agg: benchMedian, contenders: cfg.tpContenders, baselines: []string{contRaw}, lowerBetter: true, paired: true},
		{scenario: scenOutage, metric: "outage_ms", figure: "kill → publishable again, median of " + kills, unit: "ms",
			agg: benchMedian, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true, maxRatio: 0.75},
		{scenario: scenOutage, metric: "outage_ms", figure: "kill → publishable again, max of " + kills, unit: "ms",
			agg: benchMax, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true, maxRatio: 2},
		{scenario: scenDetection, metric: "detect_ms", figure: fmt.Sprintf("blackhole → loss noticed (heartbeat %v), median of %d", cfg.detectHeartbeat, cfg.detections), unit: "ms",
			agg: benchMedian, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true, maxRatio: 0.7},
		{scenario: scenDetection, metric: "detect_ms", figure: fmt.Sprintf("blackhole → loss noticed (heartbeat %v), max of %d", cfg.detectHeartbeat, cfg.detections), unit: "ms",
			agg: benchMax, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true},
		{scenario: scenDetection, metric: "detect_load_ms", figure: fmt.Sprintf("blackhole under %d confirmed msg/s → loss noticed (heartbeat %v), median of %d", benchDetectRate, cfg.detectHeartbeat, cfg.detections), unit: "ms",
			agg: benchMedian, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true, maxRatio: 0.5},
		{scenario: scenDetection, metric: "detect_load_ms", figure: fmt.Sprintf("blackhole under %d confirmed msg/s → loss noticed (heartbeat %v), max of %d", benchDetectRate, cfg.detectHeartbeat, cfg.detections), unit: "ms",
			agg: benchMax, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true},
		{scenario: scenIdle, metric: "cpu_ms", figure: fmt.Sprintf("CPU time over %v idle, median of %d", cfg.idleFor, cfg.idleRuns), unit: "ms",
			agg: benchMedian, contenders: benchContenders, baselines: []string{contRaw}, lowerBetter: true, maxRatio: 1.1},
		{scenario: scenIdle, metric: "ctxsw", figure: fmt.Sprintf("context switches over %v idle, median of %d", cfg.idleFor, cfg.idleRuns), unit: "count",
			agg: benchMedian, contenders: benchContenders, baselines: []string{contRaw}, lowerBetter: true},
		{scenario: scenLoss, metric: "lost", figure: "lost (of " + lossN + ")", unit: "count",
			agg: benchSum, contenders: benchReconnecting, zero: true},
		{scenario: scenLoss, metric: "lost_confirmed", figure: "lost although confirmed", unit: "count",
			agg: benchSum, contenders: benchReconnecting, zero: true},
		{scenario: scenLoss, metric: "duplicates", figure: "duplicates in the queue", unit: "count",
			agg: benchSum, contenders: benchReconnecting},
		{scenario: scenLoss, metric: "unconfirmed", figure: "unconfirmed when the publisher stopped", unit: "count",
			agg: benchSum, contenders: benchReconnecting},
		{scenario: scenLoss, metric: "elapsed_s", figure: "time to settle all " + lossN, unit: "s",
			agg: benchSum, contenders: benchReconnecting, baselines: amqp091, lowerBetter: true},
		{scenario: scenLoss, metric: "kills", figure: fmt.Sprintf("kill requests during the run (one per %v)", cfg.killEvery), unit: "count",
			agg: benchSum, contenders: benchReconnecting},
		{scenario: scenLoss, metric: "losses_seen", figure: "connection losses the publisher saw", unit: "count",
			agg: benchSum, contenders: benchReconnecting},
	}
	// The fleet's rows go after the idle rows: both are about what warren
	// costs while nothing happens.
	at := slices.IndexFunc(specs, func(s rowSpec) bool { return s.scenario == scenLoss })
	specs = slices.Insert(specs, at, fleetRowSpecs(cfg)...)
	// The sweep's rows go after the outage rows: both are about the
	// reconnect policy.
	at = slices.IndexFunc(specs, func(s rowSpec) bool { return s.scenario == scenDetection })
	return slices.Insert(specs, at, sweepRowSpecs(cfg)...)
}

// sweepRowSpecs are two rows per sweep cell: the median and the maximum of
// the extra downtime after the fault ended, each with the bound.
func sweepRowSpecs(cfg benchConfig) []rowSpec {
	var specs []rowSpec
	for _, c := range sweepCells(cfg.sweepKinds, cfg.sweepDurations) {
		what := c.kind + ": fault end → up"
		if sweepHeld(c.kind) {
			what = fmt.Sprintf("%s %v: fault end → up", c.kind, c.dur)
		}
		for _, r := range []struct {
			agg  func([]float64) float64
			name string
			pick func(med, max time.Duration) time.Duration
		}{
			{benchMedian, "median", func(med, _ time.Duration) time.Duration { return med }},
			{benchMax, "max", func(_, mx time.Duration) time.Duration { return mx }},
		} {
			cell, pick := c.cell(), r.pick
			specs = append(specs, rowSpec{scenario: cell, group: scenSweep, metric: "extra_ms",
				figure: fmt.Sprintf("%s, %s of %d", what, r.name, cfg.sweepReps), unit: "ms", agg: r.agg,
				contenders: benchReconnecting, baselines: []string{contNaive}, lowerBetter: true,
				boundOf: func(samples []benchSample) (float64, string) {
					f := sweepFaultLength(samples, cell)
					return float64(pick(sweepBounds(f))) / 1e6, fmt.Sprintf(" (fault %.1f s)", f.Seconds())
				}})
		}
	}
	return specs
}

// buildReport aggregates samples into rows; rows of scenarios that were not
// run are left out.
func buildReport(env benchEnv, cfg benchConfig, samples []benchSample) *benchReport {
	rep := &benchReport{Env: env, Samples: samples}
	for _, spec := range rowSpecs(cfg) {
		group := spec.group
		if group == "" {
			group = spec.scenario
		}
		if !slices.Contains(cfg.scenarios, group) {
			continue
		}
		rep.Rows = append(rep.Rows, spec.build(samples))
	}
	return rep
}

// build aggregates the samples of spec's scenario and metric into a row,
// with warren's ratio to the best baseline and the verdict on the target.
func (spec rowSpec) build(samples []benchSample) benchRow {
	row := benchRow{Scenario: spec.scenario, Figure: spec.figure, Metric: spec.metric, Unit: spec.unit,
		Values: map[string]float64{}, Failed: map[string]int{}}
	for _, c := range spec.contenders {
		var xs []float64
		for _, s := range samples {
			if s.Scenario != spec.scenario || s.Contender != c {
				continue
			}
			if s.Err != "" {
				row.Failed[c]++
				continue
			}
			if v, ok := s.Metrics[spec.metric]; ok {
				xs = append(xs, v)
			}
		}
		if v := spec.agg(xs); !math.IsNaN(v) {
			row.Values[c] = v
		}
	}
	if len(row.Failed) == 0 {
		row.Failed = nil
	}
	w, haveW := row.Values[contWarren]
	if base, ok := spec.best(row.Values); ok && haveW {
		row.Baseline = base
		switch b := row.Values[base]; {
		case spec.paired:
			row.Ratio, row.Paired = spec.pairedRatio(samples, base), true
		case b != 0:
			row.Ratio = w / b
		}
	}
	switch {
	case spec.zero:
		row.Target = "= 0"
		if haveW {
			met := w == 0
			row.Met = &met
		}
	case spec.minRatio > 0:
		row.Target = fmt.Sprintf("≥ %.2f×", spec.minRatio)
		if row.Baseline != "" && row.Ratio != 0 {
			met := row.Ratio >= spec.minRatio
			row.Met = &met
		}
	case spec.maxRatio > 0:
		row.Target = fmt.Sprintf("≤ %.2f×", spec.maxRatio)
		if row.Baseline != "" && row.Values[row.Baseline] != 0 {
			met := row.Ratio <= spec.maxRatio
			row.Met = &met
		}
	case spec.maxValue > 0 || spec.boundOf != nil:
		bound, how := spec.maxValue, ""
		if spec.boundOf != nil {
			bound, how = spec.boundOf(samples)
		}
		row.Target = "≤ " + formatFigure(bound, spec.unit) + " " + spec.unit + how
		if haveW {
			met := w <= bound
			row.Met = &met
		}
	}
	return row
}

// pairedRatio returns the median over runs of warren's figure divided by
// base's figure in the same run, or 0 if no run has both.
func (spec rowSpec) pairedRatio(samples []benchSample, base string) float64 {
	byRun := map[string]map[int]float64{}
	for _, s := range samples {
		v, ok := s.Metrics[spec.metric]
		if s.Scenario != spec.scenario || s.Err != "" || !ok {
			continue
		}
		if byRun[s.Contender] == nil {
			byRun[s.Contender] = map[int]float64{}
		}
		byRun[s.Contender][s.Run] = v
	}
	var ratios []float64
	for run, w := range byRun[contWarren] {
		if b, ok := byRun[base][run]; ok && b != 0 {
			ratios = append(ratios, w/b)
		}
	}
	if len(ratios) == 0 {
		return 0
	}
	return benchMedian(ratios)
}

// best returns the baseline with the best figure.
func (spec rowSpec) best(values map[string]float64) (string, bool) {
	best, found := "", false
	for _, c := range spec.baselines {
		v, ok := values[c]
		if !ok {
			continue
		}
		if !found || (spec.lowerBetter && v < values[best]) || (!spec.lowerBetter && v > values[best]) {
			best, found = c, true
		}
	}
	return best, found
}

// writeMarkdown prints the table and what it was measured on.
func (r *benchReport) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "| Scenario | Figure | %s | warren ÷ baseline | Target | Result |\n", strings.Join(benchContenders, " | "))
	fmt.Fprintf(w, "|---|---|%s---|---|---|\n", strings.Repeat("---:|", len(benchContenders)))
	for _, row := range r.Rows {
		cells := make([]string, len(benchContenders))
		for i, c := range benchContenders {
			cells[i] = row.cell(c)
		}
		ratio := "—"
		if row.Baseline != "" && row.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f× %s", row.Ratio, row.Baseline)
			if row.Paired {
				ratio += " (paired runs)"
			}
		}
		target := row.Target
		if target == "" {
			target = "—"
		}
		result := "—"
		if row.Met != nil {
			result = "met"
			if !*row.Met {
				result = "**MISSED**"
			}
		}
		fmt.Fprintf(w, "| %s | %s (%s) | %s | %s | %s | %s |\n",
			row.Scenario, row.Figure, row.Unit, strings.Join(cells, " | "), ratio, target, result)
	}
	fmt.Fprintln(w)
	e := r.Env
	fmt.Fprintf(w, "- Machine: %d CPUs, %s RAM, %s %s (%s)\n", e.CPUs, e.Memory, e.OS, e.Kernel, e.Arch)
	fmt.Fprintf(w, "- Versions: %s, RabbitMQ %s (%s), amqp091-go %s, warren %s\n", e.Go, e.RabbitMQ, e.Erlang, e.AMQP091, e.Warren)
	fmt.Fprintf(w, "- Broker: %s; kills through the %s\n", e.Broker, e.KillRoute)
	if k := r.killInterval(); k > 0 {
		fmt.Fprintf(w, "- Loss scenario: kills achieved every %.0f ms on average\n", k)
	}
	fmt.Fprintf(w, "- Command: `%s`\n", e.Command)
	fmt.Fprintf(w, "- Run time: %s (started %s)\n", r.Elapsed.Round(time.Second), e.Date)
	if n := r.failures(); n > 0 {
		fmt.Fprintf(w, "- %d runs failed; their figures are left out (see the log and the JSON lines)\n", n)
	}
}

// cell formats contender c's figure.
func (row benchRow) cell(c string) string {
	v, ok := row.Values[c]
	failed := row.Failed[c]
	switch {
	case !ok && failed > 0:
		return "failed"
	case !ok:
		return "—"
	}
	s := formatFigure(v, row.Unit)
	if failed > 0 {
		s += fmt.Sprintf(" (%d failed)", failed)
	}
	return s
}

// formatFigure renders v with the precision its unit deserves.
func formatFigure(v float64, unit string) string {
	switch unit {
	case "msg/s", "count":
		return groupThousands(int64(math.Round(v)))
	}
	switch a := math.Abs(v); {
	case a >= 100:
		return groupThousands(int64(math.Round(v)))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// groupThousands writes n with commas between groups of three digits: 12,345.
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (r *benchReport) killInterval() float64 {
	var xs []float64
	for _, s := range r.Samples {
		if v, ok := s.Metrics["kill_interval_ms"]; ok && s.Scenario == scenLoss && v > 0 {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	return benchSum(xs) / float64(len(xs))
}

func (r *benchReport) failures() int {
	n := 0
	for _, s := range r.Samples {
		if s.Err != "" {
			n++
		}
	}
	return n
}

// writeJSONLines writes the environment, every sample, every row and the
// run time, one JSON object per line, each with a "kind".
func (r *benchReport) writeJSONLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(struct {
		Kind string `json:"kind"`
		benchEnv
	}{"env", r.Env}); err != nil {
		return err
	}
	for _, s := range r.Samples {
		if err := enc.Encode(struct {
			Kind string `json:"kind"`
			benchSample
		}{"sample", s}); err != nil {
			return err
		}
	}
	for _, row := range r.Rows {
		if err := enc.Encode(struct {
			Kind string `json:"kind"`
			benchRow
		}{"row", row}); err != nil {
			return err
		}
	}
	return enc.Encode(struct {
		Kind     string  `json:"kind"`
		ElapsedS float64 `json:"elapsed_s"`
		Failed   int     `json:"failed_runs"`
	}{"run", r.Elapsed.Seconds(), r.failures()})
}
