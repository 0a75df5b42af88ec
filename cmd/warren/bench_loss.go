package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// loss publishes cfg.lossN persistent messages at cfg.lossRate from each
// reconnecting contender while the coordinator kills its connections every
// cfg.killEvery (for at most cfg.killFor, and only while the worker is still
// publishing), then reads the queue back and counts messages lost, lost
// although confirmed, and duplicated.
func (bn *bench) loss(ctx context.Context) {
	for _, c := range benchReconnecting {
		if ctx.Err() != nil {
			return
		}
		s, err := bn.lossRun(ctx, c)
		if err != nil {
			bn.record(failedBenchSample(scenLoss, c, 1, err))
			continue
		}
		bn.record(s)
	}
}

// lossRun runs the loss scenario once for contender c and reads the queue
// back.
func (bn *bench) lossRun(ctx context.Context, c string) (benchSample, error) {
	queue := "warren-bench-loss-" + c
	if err := bn.freshQueue(queue, true); err != nil {
		return benchSample{}, err
	}
	defer bn.deleteQueue(queue)
	// The client's consumer must not eat the messages being counted.
	cfg := bn.worker(c, scenLoss, queue)
	cfg.Consume = queue + "-consumer"
	if err := bn.freshQueue(cfg.Consume, false); err != nil {
		return benchSample{}, err
	}
	defer bn.deleteQueue(cfg.Consume)
	cfg.N = bn.cfg.lossN
	cfg.Deadline = bn.cfg.lossDeadline
	ch, err := bn.start(cfg)
	if err != nil {
		return benchSample{}, err
	}
	if _, err := ch.await(ctx, wmReady, benchReadyTimeout, nil); err != nil {
		ch.kill()
		return benchSample{}, err
	}
	user, _ := benchUser(c)
	killCtx, stopKills := context.WithTimeout(ctx, bn.cfg.killFor)
	k := &benchKiller{admin: bn.admin, user: user, every: bn.cfg.killEvery}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); k.run(killCtx) }()
	res, err := ch.await(ctx, wmResult, bn.cfg.lossDeadline+benchReadyTimeout, nil)
	stopKills()
	wg.Wait()
	if err != nil {
		ch.kill()
		return benchSample{}, err
	}
	if err := ch.finish(); err != nil {
		return benchSample{}, err
	}
	r := res.Result
	if r == nil || r.Messages != cfg.N {
		return benchSample{}, errors.New("loss: result without the messages count")
	}
	confirmed, err := decodeBenchBitset(r.Bitmap, cfg.N)
	if err != nil {
		return benchSample{}, err
	}
	copies, foreign, err := bn.readBack(ctx, queue, cfg.N)
	if err != nil {
		return benchSample{}, fmt.Errorf("reading the queue back: %w", err)
	}
	t := benchTally(copies, confirmed)
	kills, interval, killErrs := k.stats()
	return benchSample{Scenario: scenLoss, Contender: c, Run: 1, Metrics: map[string]float64{
		"lost":             float64(t.lost),
		"lost_confirmed":   float64(t.lostConfirmed),
		"duplicates":       float64(t.duplicates),
		"unconfirmed":      float64(cfg.N - r.Confirmed),
		"foreign":          float64(foreign),
		"kills":            float64(kills),
		"kill_errors":      float64(killErrs),
		"kill_interval_ms": float64(interval) / 1e6,
		"losses_seen":      float64(r.Losses),
		"elapsed_s":        time.Duration(r.ElapsedNS).Seconds(),
	}}, nil
}

// benchKiller closes a user's connections every interval until its ctx ends. A
// kill that takes longer than the interval delays the next one; stats says
// what interval was achieved.
type benchKiller struct {
	admin benchAdmin
	user  string
	every time.Duration

	mu    sync.Mutex
	times []time.Time
	errs  int
}

// run kills until ctx ends.
func (k *benchKiller) run(ctx context.Context) {
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		kctx, cancel := context.WithTimeout(ctx, benchAdminTimeout)
		err := k.admin.closeUser(kctx, k.user)
		cancel()
		k.mu.Lock()
		if err != nil && ctx.Err() == nil {
			k.errs++
		} else if err == nil {
			k.times = append(k.times, at)
		}
		k.mu.Unlock()
	}
}

// stats returns the number of kills, their mean interval, and the failed
// kill requests.
func (k *benchKiller) stats() (n int, interval time.Duration, errs int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n = len(k.times)
	if n > 1 {
		interval = k.times[n-1].Sub(k.times[0]) / time.Duration(n-1)
	}
	return n, interval, k.errs
}
