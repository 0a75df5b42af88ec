package main

import (
	"context"
	"fmt"
	"time"
)

// scenFleet measures what warren costs per connection next to raw
// amqp091-go: the heap, RSS and goroutines of a fleet of connected clients
// in one process, and the CPU time and voluntary context switches of one
// idle client with a short heartbeat (issue 18).
const scenFleet = "fleet"

// benchFleetContenders are the fleet's columns: the library warren wraps,
// and warren.
var benchFleetContenders = []string{contRaw, contWarren}

// benchFleetTimeout bounds one fleet worker: dialing the whole fleet, the
// idle window and the teardown.
const benchFleetTimeout = 3 * time.Minute

// fleet runs, for each contender, one worker that connects cfg.fleetN
// clients and reports their memory, then cfg.fleetRuns rounds in which a
// worker per contender, all at once, idles one client with a heartbeat of
// cfg.fleetHeartbeat for cfg.idleFor. Memory workers run one after the
// other, so that the broker serves one fleet at a time.
func (bn *bench) fleet(ctx context.Context) {
	for _, c := range benchFleetContenders {
		if ctx.Err() != nil {
			return
		}
		bn.record(bn.fleetMemory(ctx, c))
	}
	for run := 1; run <= bn.cfg.fleetRuns && ctx.Err() == nil; run++ {
		bn.fleetIdleRound(ctx, run)
	}
}

// fleetWorker is the worker configuration of a fleet run of contender c.
func (bn *bench) fleetWorker(c string, n int, idle time.Duration) workerConfig {
	cfg := bn.worker(c, scenFleet, "warren-bench-fleet-"+c)
	cfg.N, cfg.Duration, cfg.Deadline = n, idle, benchFleetTimeout
	if idle > 0 {
		cfg.Heartbeat = bn.cfg.fleetHeartbeat
	}
	return cfg
}

// fleetMemory runs contender c's fleet of cfg.fleetN clients.
func (bn *bench) fleetMemory(ctx context.Context, c string) benchSample {
	res, _, err := bn.runToResult(ctx, bn.fleetWorker(c, bn.cfg.fleetN, 0), benchFleetTimeout+time.Minute)
	if err == nil && res.Fleet == nil {
		err = fmt.Errorf("worker %s/%s: no fleet figures", c, scenFleet)
	}
	if err != nil {
		return failedBenchSample(scenFleet, c, 1, err)
	}
	f, n := res.Fleet, float64(res.Fleet.Clients)
	return benchSample{Scenario: scenFleet, Contender: c, Run: 1, Metrics: map[string]float64{
		"clients":         n,
		"heap_kib_conn":   float64(f.HeapBytes) / 1024 / n,
		"rss_kib_conn":    float64(f.RSSBytes) / 1024 / n,
		"goroutines_conn": float64(f.Goroutines) / n,
		"connect_s":       time.Duration(f.ConnectNS).Seconds(),
	}}
}

// fleetIdleRound idles one client of every contender at the same time, so
// that they see the same machine noise.
func (bn *bench) fleetIdleRound(ctx context.Context, run int) {
	children := map[string]*benchChild{}
	for _, c := range benchFleetContenders {
		ch, err := bn.start(bn.fleetWorker(c, 1, bn.cfg.idleFor))
		if err != nil {
			bn.record(failedBenchSample(scenFleet, c, run, err))
			continue
		}
		children[c] = ch
	}
	for _, c := range benchFleetContenders {
		ch := children[c]
		if ch == nil {
			continue
		}
		m, err := ch.await(ctx, wmResult, bn.cfg.idleFor+benchFleetTimeout, nil)
		if err != nil {
			ch.kill()
			bn.record(failedBenchSample(scenFleet, c, run, err))
			continue
		}
		if err := ch.finish(); err != nil {
			bn.record(failedBenchSample(scenFleet, c, run, err))
			continue
		}
		res := m.Result
		bn.record(benchSample{Scenario: scenFleet, Contender: c, Run: run, Metrics: map[string]float64{
			"idle_cpu_ms": float64(res.CPUNS) / 1e6,
			"idle_nvcsw":  float64(res.Nvcsw),
			"idle_nivcsw": float64(res.Nivcsw),
			"window_s":    time.Duration(res.WindowNS).Seconds(),
			"gcs":         float64(res.GCs),
		}})
	}
}

// fleetRowSpecs are the fleet's rows, with issue 18's targets.
func fleetRowSpecs(cfg benchConfig) []rowSpec {
	idle := fmt.Sprintf("one connection + publishing channel, heartbeat %v, over %v idle, median of %d",
		cfg.fleetHeartbeat, cfg.idleFor, cfg.fleetRuns)
	fleet := fmt.Sprintf("(fleet of %d, each a connection + publishing channel)", cfg.fleetN)
	base := []string{contRaw}
	return []rowSpec{
		{scenario: scenFleet, metric: "idle_cpu_ms", figure: "CPU time, " + idle, unit: "ms",
			agg: benchMedian, contenders: benchFleetContenders, baselines: base, lowerBetter: true, maxRatio: 1.1},
		{scenario: scenFleet, metric: "idle_nvcsw", figure: "voluntary context switches, " + idle, unit: "count",
			agg: benchMedian, contenders: benchFleetContenders, baselines: base, lowerBetter: true, maxRatio: 1.1},
		{scenario: scenFleet, metric: "heap_kib_conn", figure: "heap per connection " + fleet, unit: "KiB",
			agg: benchMedian, contenders: benchFleetContenders, baselines: base, lowerBetter: true, maxRatio: 1.5},
		{scenario: scenFleet, metric: "rss_kib_conn", figure: "RSS per connection " + fleet, unit: "KiB",
			agg: benchMedian, contenders: benchFleetContenders, baselines: base, lowerBetter: true, maxRatio: 1.3},
		{scenario: scenFleet, metric: "goroutines_conn", figure: "goroutines per connection " + fleet, unit: "count",
			agg: benchMedian, contenders: benchFleetContenders, baselines: base, lowerBetter: true, maxValue: 5},
	}
}
