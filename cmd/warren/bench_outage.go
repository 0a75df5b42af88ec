package main

import (
	"context"
	"fmt"
	"time"
)

// benchUpTimeout bounds the wait for a contender to come back after a kill;
// amqp091-go's recovery needs 5 to 5.5 s.
const benchUpTimeout = 30 * time.Second

// outage kills each reconnecting contender's connection from the broker side
// (320 CONNECTION_FORCED, through its own user) cfg.kills times and measures
// how long until it is publishable again: from the coordinator's kill
// request to the worker's "up" (its confirm-mode channel reopened and its
// consumer subscribed again). Kills come cfg.killSpacing after the previous
// recovery: repeated faults on a connection that did work in between, which
// a reconnect policy must not mistake for a flapping broker.
func (bn *bench) outage(ctx context.Context) {
	for _, c := range benchReconnecting {
		if ctx.Err() != nil {
			return
		}
		bn.outageRuns(ctx, c)
	}
}

// outageRuns runs the kills for contender c in one worker.
func (bn *bench) outageRuns(ctx context.Context, c string) {
	queue := "warren-bench-outage-" + c
	if err := bn.freshQueue(queue, false); err != nil {
		bn.record(failedBenchSample(scenOutage, c, 1, err))
		return
	}
	defer bn.deleteQueue(queue)
	cfg := bn.worker(c, scenOutage, queue)
	cfg.Deadline = time.Duration(bn.cfg.kills)*(bn.cfg.killSpacing+benchUpTimeout) + 2*benchReadyTimeout
	ch, err := bn.start(cfg)
	if err != nil {
		bn.record(failedBenchSample(scenOutage, c, 1, err))
		return
	}
	defer func() {
		if err := ch.finish(); err != nil {
			bn.logf("bench: outage %s: %v", c, err)
		}
	}()
	if _, err := ch.await(ctx, wmReady, benchReadyTimeout, nil); err != nil {
		bn.record(failedBenchSample(scenOutage, c, 1, err))
		return
	}
	user, _ := benchUser(c)
	for k := 1; k <= bn.cfg.kills; k++ {
		if err := benchSleep(ctx, bn.cfg.killSpacing); err != nil {
			return
		}
		s, err := bn.killAndTime(ctx, ch, user)
		if err != nil {
			bn.record(failedBenchSample(scenOutage, c, k, err))
			return
		}
		s.Contender, s.Run = c, k
		bn.record(s)
	}
}

// killAndTime kills user's connections and waits for the worker to lose
// and regain its connection.
func (bn *bench) killAndTime(ctx context.Context, ch *benchChild, user string) (benchSample, error) {
	kctx, cancel := context.WithTimeout(ctx, benchAdminTimeout)
	kill := time.Now()
	err := bn.admin.closeUser(kctx, user)
	request := time.Since(kill)
	cancel()
	if err != nil {
		return benchSample{}, fmt.Errorf("kill: %w", err)
	}
	var lostAt int64
	up, err := ch.await(ctx, wmUp, benchUpTimeout, func(m benchMsg) {
		if m.Type == wmLost && lostAt == 0 {
			lostAt = m.T
		}
	})
	if err != nil {
		return benchSample{}, err
	}
	m := map[string]float64{
		"outage_ms":       float64(up.T-kill.UnixNano()) / 1e6,
		"lost_to_up_ms":   float64(up.OutageNS) / 1e6,
		"kill_request_ms": float64(request) / 1e6,
	}
	if lostAt != 0 {
		m["kill_to_lost_ms"] = float64(lostAt-kill.UnixNano()) / 1e6
	}
	return benchSample{Scenario: scenOutage, Metrics: m}, nil
}
