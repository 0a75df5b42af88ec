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
		"consume_rate": benchConsumeRate(res),
		"publish_s":    pub,
		"consume_s":    con,
		"subscribe_ms": float64(res.SubscribeNS) / float64(time.Millisecond),
		"proc_cpu_s":   u.cpu.Seconds(),
	}}
}

// benchConsumeRate is the consumption rate of a throughput result: the
// deliveries after the first over the time from the first to the last. The
// time to the first delivery is set-up (SubscribeNS), reported apart:
// warren's default consumer declares its retry queues and opens a
// publisher for them before it consumes, which on a loaded broker took
// longer than consuming 50,000 messages.
func benchConsumeRate(res *workerResult) float64 {
	if res.Messages < 2 || res.ConsumeNS <= 0 {
		return 0
	}
	return float64(res.Messages-1) / time.Duration(res.ConsumeNS).Seconds()
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
