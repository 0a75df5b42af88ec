package main

import (
	"context"
	"fmt"
	"time"
)

// benchThroughputTimeout bounds one throughput run of a worker.
const benchThroughputTimeout = 4 * time.Minute

// throughput publishes cfg.n persistent messages with confirms into a fresh
// durable queue, then consumes them, once per contender per run. Runs are
// interleaved (raw, warren, raw, warren, ...) so that the machine's noise
// spreads over every contender alike.
func (bn *bench) throughput(ctx context.Context) {
	for run := 1; run <= bn.cfg.runs; run++ {
		for _, c := range bn.cfg.tpContenders {
			if ctx.Err() != nil {
				return
			}
			bn.record(bn.throughputRun(ctx, c, run))
		}
	}
}

// throughputRun runs throughput run number run of contender c.
func (bn *bench) throughputRun(ctx context.Context, c string, run int) benchSample {
	queue := fmt.Sprintf("warren-bench-throughput-%s-%d", c, run)
	if err := bn.freshQueue(queue, true); err != nil {
		return failedBenchSample(scenThroughput, c, run, err)
	}
	defer bn.deleteQueue(queue)
	cfg := bn.worker(c, scenThroughput, queue)
	cfg.Deadline = benchThroughputTimeout
	res, u, err := bn.runToResult(ctx, cfg, benchThroughputTimeout+time.Minute)
	if err != nil {
		return failedBenchSample(scenThroughput, c, run, err)
	}
	pub := time.Duration(res.PublishNS).Seconds()
	con := time.Duration(res.ConsumeNS).Seconds()
	return benchSample{Scenario: scenThroughput, Contender: c, Run: run, Metrics: map[string]float64{
		"publish_rate": float64(res.Messages) / pub,
		"consume_rate": float64(res.Messages) / con,
		"publish_s":    pub,
		"consume_s":    con,
		"proc_cpu_s":   u.cpu.Seconds(),
	}}
}

// runToResult runs one worker to its result, bounded by timeout, and returns
// it with the whole process's rusage.
func (bn *bench) runToResult(ctx context.Context, cfg workerConfig, timeout time.Duration) (*workerResult, benchUsage, error) {
	ch, err := bn.start(cfg)
	if err != nil {
		return nil, benchUsage{}, err
	}
	m, err := ch.await(ctx, wmResult, timeout, nil)
	if err != nil {
		ch.kill()
		return nil, benchUsage{}, err
	}
	if err := ch.finish(); err != nil {
		return nil, benchUsage{}, err
	}
	return m.Result, ch.usage, nil
}
