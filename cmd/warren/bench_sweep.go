package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/faultproxy"
)

// Bounds of the sweep's steps.
const (
	// benchSweepUpTimeout bounds the wait for a contender to be up again
	// after a fault ends; warren's old default could wait 45 s before a dial.
	benchSweepUpTimeout = 2 * time.Minute
	// benchSweepBrokerTimeout bounds stop_app and start_app, which boot an
	// Erlang VM for rabbitmqctl and wait for the application.
	benchSweepBrokerTimeout = 2 * time.Minute
	// benchSweepProbeEvery is how often the coordinator dials the broker to
	// find the moment it accepts connections again: the fault's end is known
	// to within this.
	benchSweepProbeEvery = 10 * time.Millisecond
	// benchSweepSettle is the healthy time after the last fault of a phase
	// before its outcome is read.
	benchSweepSettle = 2 * time.Second
)

// sweepRunner is one phase of the sweep: one worker per reconnecting
// contender, all connected at once, all hit by the same faults.
type sweepRunner struct {
	bn    *bench
	conts []*sweepContender
}

// sweepContender is one contender's worker in a sweep phase.
type sweepContender struct {
	name  string
	user  string
	queue string
	proxy *faultproxy.Proxy // nil in the direct phase
	child *benchChild
	track *sweepTrack
	start time.Time // the current fault's start, as this contender met it
}

// sweep measures the extra downtime each contender adds after a fault ends
// (fault end → up again), for faults of several kinds and lengths injected
// in one seeded sequence with healthy gaps in between (see sweepPlan). All
// contenders run at the same time against the same faults. The refused
// faults (kill, stop_app) run in a direct phase, the partitions in a phase
// where every contender connects through a fault proxy of its own.
func (bn *bench) sweep(ctx context.Context) {
	plan := sweepPlan(sweepCells(bn.cfg.sweepKinds, bn.cfg.sweepDurations), bn.cfg.sweepReps,
		bn.cfg.sweepGapMin, bn.cfg.sweepGapMax, bn.cfg.sweepSeed)
	var direct, proxied []sweepFault
	for _, f := range plan {
		if f.proxied() {
			proxied = append(proxied, f)
		} else {
			direct = append(direct, f)
		}
	}
	for _, phase := range [][]sweepFault{direct, proxied} {
		if len(phase) == 0 || ctx.Err() != nil {
			continue
		}
		bn.sweepPhase(ctx, phase)
	}
}

// sweepPhase runs faults against one set of workers.
func (bn *bench) sweepPhase(ctx context.Context, faults []sweepFault) {
	proxied := faults[0].proxied()
	r := &sweepRunner{bn: bn}
	defer r.close()
	if err := r.startAll(ctx, proxied); err != nil {
		for _, f := range faults {
			for _, c := range benchReconnecting {
				bn.record(failedBenchSample(f.cell(), c, f.rep, err))
			}
		}
		return
	}
	bn.logf("bench: sweep: %d faults, %s", len(faults), describeSweepPlan(faults))
	var prev *sweepFault
	var prevEnd time.Time
	for i := range faults {
		f := &faults[i]
		if benchSleep(ctx, f.health) != nil {
			return
		}
		if prev != nil {
			r.recordOutcomes(ctx, *prev, prevEnd)
		}
		end, err := r.inject(ctx, *f)
		if err != nil {
			for _, c := range r.conts {
				bn.record(failedBenchSample(f.cell(), c.name, f.rep, err))
			}
			return
		}
		if err := r.waitUp(ctx, *f); err != nil {
			r.recordOutcomes(ctx, *f, end)
			return
		}
		prev, prevEnd = f, end
	}
	if prev != nil && benchSleep(ctx, benchSweepSettle) == nil {
		r.recordOutcomes(ctx, *prev, prevEnd)
	}
}

// describeSweepPlan lists the faults for the progress log.
func describeSweepPlan(faults []sweepFault) string {
	s := ""
	for i, f := range faults {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%v health then %s %v", f.health, f.kind, f.dur)
	}
	return s
}

// startAll starts every reconnecting contender's worker (behind a proxy of
// its own if proxied) and waits until all are ready.
func (r *sweepRunner) startAll(ctx context.Context, proxied bool) error {
	bn := r.bn
	for _, c := range benchReconnecting {
		user, _ := benchUser(c)
		sc := &sweepContender{name: c, user: user, queue: "warren-bench-sweep-" + c, track: newSweepTrack()}
		r.conts = append(r.conts, sc)
		// Durable: stop_app drops transient queues, and a consumer that
		// cannot resubscribe would never be up again.
		if err := bn.freshQueue(sc.queue, true); err != nil {
			return err
		}
		cfg := bn.worker(c, scenOutage, sc.queue)
		cfg.ConnName = "warren-bench-" + c + "-sweep"
		cfg.Deadline = 2 * time.Hour // the coordinator ends the worker
		if proxied {
			// Short, so that partitions are noticed at all. The direct
			// phase keeps the default: a 1 s heartbeat misses beats while
			// start_app loads the machine, and spurious losses would be
			// counted as the fault's downtime.
			cfg.Heartbeat = bn.cfg.sweepHeartbeat
			p, err := faultproxy.New(bn.b.Addr())
			if err != nil {
				return err
			}
			sc.proxy = p
			cfg.URL = benchWithHost(cfg.URL, p.Addr())
		}
		ch, err := bn.start(cfg)
		if err != nil {
			return err
		}
		sc.child = ch
		go sc.track.run(ctx, ch)
	}
	for _, sc := range r.conts {
		if err := sc.track.waitReady(ctx, benchReadyTimeout); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}

// close stops the workers and proxies and deletes the queues.
func (r *sweepRunner) close() {
	for _, sc := range r.conts {
		if sc.child != nil {
			if err := sc.child.finish(); err != nil {
				r.bn.logf("bench: sweep %s: %v", sc.name, err)
			}
		}
		if sc.proxy != nil {
			sc.proxy.Close()
		}
		r.bn.deleteQueue(sc.queue)
	}
}

// inject applies fault f to every contender and returns when it ended: for
// a kill, when it was requested; for stop_app and a restart, when a fresh
// dial first succeeded after the broker came back; for a partition, when the
// proxies healed.
func (r *sweepRunner) inject(ctx context.Context, f sweepFault) (time.Time, error) {
	bn := r.bn
	switch f.kind {
	case sweepKill:
		var end time.Time
		for _, sc := range r.conts {
			sc.start = time.Now()
			end = sc.start
			if err := bn.killUser(ctx, sc.user); err != nil {
				return end, err
			}
		}
		return end, nil
	case sweepStopApp:
		start := time.Now()
		for _, sc := range r.conts {
			sc.start = start
		}
		sctx, cancel := context.WithTimeout(ctx, benchSweepBrokerTimeout)
		err := bn.b.Faults.StopApp(sctx)
		cancel()
		if err != nil {
			return start, fmt.Errorf("stop_app: %w", err)
		}
		if err := benchSleep(ctx, f.dur); err != nil {
			return start, err
		}
		end, err := bn.probeBack(ctx, bn.b.Faults.StartApp, false)
		bn.redialAdmin()
		return end, err
	case sweepRestart:
		start := time.Now()
		for _, sc := range r.conts {
			sc.start = start
		}
		end, err := bn.probeBack(ctx, bn.b.Faults.Restart, true)
		bn.redialAdmin()
		return end, err
	case sweepPartition:
		for _, sc := range r.conts {
			sc.start = time.Now()
			sc.proxy.Blackhole()
		}
		err := benchSleep(ctx, f.dur)
		for _, sc := range r.conts {
			sc.proxy.Heal()
		}
		return time.Now(), err
	}
	return time.Time{}, fmt.Errorf("bench: unknown sweep fault %q", f.kind)
}

// waitUp waits for every contender to be up again after f; a failure is
// recorded as the fault's sample by recordOutcomes.
func (r *sweepRunner) waitUp(ctx context.Context, f sweepFault) error {
	var errs []error
	for _, sc := range r.conts {
		if err := sc.track.waitUp(ctx, sc.start.UnixNano(), !f.proxied(), benchSweepUpTimeout); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sc.name, err))
		}
	}
	return errors.Join(errs...)
}

// recordOutcomes records fault f's sample for every contender, from the
// lines its worker sent since the fault started. A contender that lost its
// connection again during the healthy gap is waited for first: that loss
// is downtime after the fault's end too.
func (r *sweepRunner) recordOutcomes(ctx context.Context, f sweepFault, end time.Time) {
	for _, sc := range r.conts {
		if err := sc.track.waitUp(ctx, sc.start.UnixNano(), false, benchSweepUpTimeout); err != nil {
			r.bn.logf("bench: sweep %s: %v", sc.name, err)
		}
		events, werr := sc.track.snapshot()
		o, err := sweepOutcomeOf(events, sc.start.UnixNano(), end.UnixNano())
		if err != nil {
			if werr != nil {
				err = fmt.Errorf("%w: %w", err, werr)
			}
			r.bn.record(failedBenchSample(f.cell(), sc.name, f.rep, err))
			continue
		}
		r.bn.record(benchSample{Scenario: f.cell(), Contender: sc.name, Run: f.rep, Metrics: map[string]float64{
			"extra_ms":  float64(o.extra) / 1e6,
			"down_ms":   float64(o.down) / 1e6,
			"fault_ms":  float64(end.Sub(sc.start)) / 1e6,
			"losses":    float64(o.losses),
			"health_ms": float64(f.health) / 1e6,
		}})
	}
}

// killUser closes user's connections from the broker side, retrying for a
// while: right after start_app the management API may still be starting.
func (bn *bench) killUser(ctx context.Context, user string) error {
	ctx, cancel := context.WithTimeout(ctx, benchAdminTimeout)
	defer cancel()
	for {
		err := bn.admin.closeUser(ctx, user)
		if err == nil {
			return nil
		}
		if benchSleep(ctx, 200*time.Millisecond) != nil {
			return fmt.Errorf("kill: %w", err)
		}
	}
}

// probeBack runs bring (start_app, or a restart) and, meanwhile, dials the
// broker every benchSweepProbeEvery; it returns when the first successful
// dial started, which is when the fault ended for a client, after bring
// has returned too. With downFirst, successes before a refused dial (a
// restart that has not stopped the node yet) do not count; other failures
// do not show the node down: a stopping node still accepts connections
// and refuses the login, and may then accept one more.
func (bn *bench) probeBack(ctx context.Context, bring func(context.Context) error, downFirst bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, benchSweepBrokerTimeout)
	defer cancel()
	brought := make(chan error, 1)
	go func() { brought <- bring(ctx) }()
	cfg := amqp.Config{Dial: amqp.DefaultDial(time.Second)}
	down := !downFirst
	for {
		at := time.Now()
		c, err := amqp.DialConfig(bn.b.URL, cfg)
		if err == nil {
			c.Close()
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			down = true
		}
		if err == nil && down {
			if berr := <-brought; berr != nil {
				return at, berr
			}
			return at, nil
		}
		if benchSleep(ctx, benchSweepProbeEvery) != nil {
			return at, fmt.Errorf("broker not back: %w (last dial: %v)", ctx.Err(), err)
		}
	}
}

// redialAdmin replaces the coordinator's admin connection after stop_app
// closed it.
func (bn *bench) redialAdmin() {
	if !bn.conn.IsClosed() {
		return
	}
	c, err := amqp.Dial(bn.b.URL)
	if err != nil {
		bn.logf("bench: admin connection: %v", err)
		return
	}
	bn.conn = c
}
