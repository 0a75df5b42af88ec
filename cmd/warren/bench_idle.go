package main

import (
	"context"
	"errors"
	"time"
)

// benchReadyTimeout bounds a worker's connection and set-up.
const benchReadyTimeout = 30 * time.Second

// idle connects every contender (a confirm-mode publishing channel and a
// consumer on an empty queue, heartbeat 10 s) and measures each worker's own
// CPU time and context switches over cfg.idleFor of doing nothing, in
// cfg.idleRuns rounds. In a round the workers idle at the same time, so they
// see the same machine noise; idle processes barely compete with each other.
func (bn *bench) idle(ctx context.Context) {
	for run := 1; run <= bn.cfg.idleRuns && ctx.Err() == nil; run++ {
		bn.idleRound(ctx, run)
	}
}

// idleRound runs every contender's idle window once, all at the same time.
func (bn *bench) idleRound(ctx context.Context, run int) {
	type running struct {
		c     string
		queue string
		ch    *benchChild
		err   error
	}
	var rs []*running
	for _, c := range benchContenders {
		r := &running{c: c, queue: "warren-bench-idle-" + c}
		rs = append(rs, r)
		if r.err = bn.freshQueue(r.queue, false); r.err != nil {
			continue
		}
		cfg := bn.worker(c, scenIdle, r.queue)
		cfg.Deadline = bn.cfg.idleFor + 2*benchReadyTimeout
		r.ch, r.err = bn.start(cfg)
	}
	for _, r := range rs {
		if r.err != nil {
			bn.record(failedBenchSample(scenIdle, r.c, run, r.err))
			continue
		}
		res, err := r.ch.await(ctx, wmResult, bn.cfg.idleFor+2*benchReadyTimeout, nil)
		if err != nil {
			r.ch.kill()
			bn.record(failedBenchSample(scenIdle, r.c, run, err))
			continue
		}
		err = r.ch.finish()
		bn.deleteQueue(r.queue)
		if err != nil {
			bn.record(failedBenchSample(scenIdle, r.c, run, err))
			continue
		}
		bn.record(benchIdleSample(r.c, run, res.Result, r.ch))
	}
}

func benchIdleSample(c string, run int, res *workerResult, ch *benchChild) benchSample {
	if res == nil {
		return failedBenchSample(scenIdle, c, run, errors.New("empty result"))
	}
	window := time.Duration(res.WindowNS).Seconds()
	m := map[string]float64{
		"cpu_ms":   float64(res.CPUNS) / 1e6,
		"ctxsw":    float64(res.Nvcsw + res.Nivcsw),
		"nvcsw":    float64(res.Nvcsw),
		"nivcsw":   float64(res.Nivcsw),
		"window_s": window,
		"gcs":      float64(res.GCs),
	}
	if ch.hasRU {
		m["proc_cpu_ms"] = float64(ch.usage.cpu) / 1e6
		m["proc_ctxsw"] = float64(ch.usage.nvcsw + ch.usage.nivcsw)
	}
	return benchSample{Scenario: scenIdle, Contender: c, Run: run, Metrics: m}
}
