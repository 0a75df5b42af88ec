package main

import (
	"context"
	"fmt"
	"time"

	"github.com/warrenmq/warren/integration/faultproxy"
)

// Detection timings.
const (
	// benchDetectSettle lets heartbeats flow through the proxy before the
	// blackhole, so the partition starts in a steady state.
	benchDetectSettle = 1500 * time.Millisecond
	// benchDetectTimeout bounds the wait for a contender to notice; amqp091-go
	// alone needs three heartbeats.
	benchDetectTimeout = 20 * time.Second
)

// detection connects each reconnecting contender through a fault proxy with
// a short heartbeat, blackholes the proxy (bytes held in both directions,
// sockets open: a partition), and measures the time from the blackhole to
// the worker noticing the loss: once with the connection idle (detect_ms),
// once while it publishes benchDetectRate confirmed messages a second
// through the contender's own publishing path (detect_load_ms). naive and
// recovery both rely on amqp091-go's own detection (no read for three
// heartbeats); warren has its dead-peer monitor, whose replies-owed rule
// acts under load. Repetitions are interleaved across contenders and
// variants.
func (bn *bench) detection(ctx context.Context) {
	for run := 1; run <= bn.cfg.detections; run++ {
		for _, rate := range []int{0, benchDetectRate} {
			for _, c := range benchReconnecting {
				if ctx.Err() != nil {
					return
				}
				s, err := bn.detectOnce(ctx, c, rate)
				if err != nil {
					bn.record(failedBenchSample(scenDetection, c, run, err))
					continue
				}
				s.Run = run
				bn.record(s)
			}
		}
	}
}

// detectOnce runs one blackhole of contender c behind a proxy of its own,
// with the contender publishing rate confirmed messages a second (0: idle).
func (bn *bench) detectOnce(ctx context.Context, c string, rate int) (benchSample, error) {
	queue := "warren-bench-detection-" + c
	if err := bn.freshQueue(queue, false); err != nil {
		return benchSample{}, err
	}
	defer bn.deleteQueue(queue)
	p, err := faultproxy.New(bn.b.Addr())
	if err != nil {
		return benchSample{}, err
	}
	defer p.Close()
	cfg := bn.worker(c, scenDetection, queue)
	cfg.URL = benchWithHost(cfg.URL, p.Addr())
	cfg.Heartbeat = bn.cfg.detectHeartbeat
	cfg.Rate = rate // 0: the worker only connects (the loss scenario's rate is the default)
	if rate > 0 {
		// Enough messages to keep publishing until the worker's deadline.
		cfg.N = rate * int((benchReadyTimeout+benchDetectSettle+benchDetectTimeout)/time.Second)
	}
	cfg.Deadline = benchReadyTimeout + benchDetectSettle + benchDetectTimeout + 10*time.Second
	ch, err := bn.start(cfg)
	if err != nil {
		return benchSample{}, err
	}
	// The worker exits by itself after reporting the loss; kill it if not,
	// since its client may be redialing into the partition.
	defer ch.kill()
	if _, err := ch.await(ctx, wmReady, benchReadyTimeout, nil); err != nil {
		return benchSample{}, err
	}
	if err := benchSleep(ctx, benchDetectSettle); err != nil {
		return benchSample{}, err
	}
	hole := time.Now()
	p.Blackhole()
	lost, err := ch.await(ctx, wmLost, benchDetectTimeout, nil)
	if err != nil {
		return benchSample{}, fmt.Errorf("no loss noticed within %v: %w", benchDetectTimeout, err)
	}
	metric := "detect_ms"
	if rate > 0 {
		metric = "detect_load_ms"
	}
	bn.logf("bench: detection %s (%d msg/s) noticed: %s", c, rate, lost.Err)
	m := map[string]float64{metric: float64(lost.T-hole.UnixNano()) / 1e6}
	if lost.DeadPeer {
		m["dead_peer"] = 1
	}
	return benchSample{Scenario: scenDetection, Contender: c, Metrics: m}, nil
}
