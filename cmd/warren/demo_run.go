package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
	"github.com/warrenmq/warren/reconnect"
)

// Bounds of the demo's phases. rabbitmqctl calls are slow on a loaded
// machine (start_app waits for the application to boot), so their bounds
// are generous; none of them is a timing target.
const (
	demoFaultCallTimeout = 90 * time.Second
	demoReadyTimeout     = time.Minute // both supervisors Ready at the start
	demoRecoverTimeout   = time.Minute // both Ready again after a fault is cleared
	demoMinGap           = time.Second // steady traffic between a recovery and the next fault
	demoSettleTimeout    = 30 * time.Second
	demoDrainTimeout     = 30 * time.Second
	demoInterruptedDrain = 5 * time.Second // settle and drain bound after Ctrl-C
	demoCloseTimeout     = 15 * time.Second
)

// Supervisor settings of the demo: a 1 s heartbeat so a partition is found
// within about a second, and a short backoff so recovery shows warren rather
// than the policy's patience.
const (
	demoHeartbeat   = time.Second
	demoDialTimeout = 2 * time.Second
	demoEventBuffer = 1024
)

func demoPolicy() reconnect.Policy {
	// ResetAfter below the faults' spacing: each fault starts from an
	// immediate redial, as a connection that had been up for a while would.
	return reconnect.Policy{Initial: 100 * time.Millisecond, Max: time.Second, ResetAfter: 2 * time.Second}
}

// errDemoInterrupted marks a fault injection cut short by Ctrl-C.
var errDemoInterrupted = errors.New("interrupted")

// demoResult is the outcome of one run.
type demoResult struct {
	start  time.Time // publishing started; zero if it never did
	faults []demoFaultRecord
	totals demoTotals
	// interrupted: Ctrl-C stopped the run early.
	interrupted bool
	// err is why the run could not do its job (no totals then), or a fault
	// that could not be cleared.
	err error
	// warnings are problems that do not change the verdict.
	warnings []string
}

// Exit codes of the demo.
const (
	demoExitOK          = 0
	demoExitFailed      = 1 // lost confirmed messages, or the demo could not run
	demoExitUsage       = 2
	demoExitInterrupted = 130
)

// exitCode is 1 when a confirmed message was lost or the run failed, 130
// after Ctrl-C, else 0.
func (r demoResult) exitCode() int {
	switch {
	case r.totals.Lost > 0 || r.err != nil:
		return demoExitFailed
	case r.interrupted:
		return demoExitInterrupted
	}
	return demoExitOK
}

// demoRun is one run of the demo against a broker.
type demoRun struct {
	cfg demoConfig
	b   *broker.Broker
	con *demoConsole
	log *slog.Logger

	led *demoLedger
	trk *demoTracker
	inj *demoInjector

	runID   string
	pubSup  *conn.Supervisor
	consSup *conn.Supervisor
	pub     *conn.Publisher
	cons    *conn.Consumer
	queue   string
	tr      *demoTraffic
	start   time.Time
	// phase says what the fault runner is doing, for the status line.
	phase atomic.Pointer[string]

	exits []func() // cleanups, run in reverse order
	res   demoResult
}

// runDemo runs the demo on b: supervisors, traffic and faults, then the
// drain and the accounting. ctx ending (first Ctrl-C) stops the faults and
// publishing early but still drains and closes cleanly; hard ending (second
// Ctrl-C) cuts the drain short. Faults are cleared and everything the run
// created is removed on every path.
func runDemo(ctx, hard context.Context, b *broker.Broker, cfg demoConfig, con *demoConsole, logger *slog.Logger) demoResult {
	r := &demoRun{cfg: cfg, b: b, con: con, log: logger, led: newDemoLedger(), trk: newDemoTracker(), runID: demoRandomID()}
	defer r.runExits()
	if err := r.setup(ctx); err != nil {
		r.res.err = err
		r.res.interrupted = ctx.Err() != nil
		return r.res
	}
	r.run(ctx, hard)
	return r.res
}

func demoRandomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func (r *demoRun) atExit(f func()) { r.exits = append(r.exits, f) }

func (r *demoRun) runExits() {
	for i := len(r.exits) - 1; i >= 0; i-- {
		r.exits[i]()
	}
}

// warnf records a problem that does not change the verdict and logs it.
func (r *demoRun) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.warnings = append(r.res.warnings, msg)
	r.con.logf("warning: %s", msg)
}

// demoCleanupCtx bounds a cleanup step; it ignores Ctrl-C, which must not leave
// a fault on or a user behind.
func demoCleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), demoFaultCallTimeout)
}

// setup creates the demo's broker user, the fault proxy, both supervisors,
// the topology, the consumer and the publisher, and waits until both
// supervisors are Ready.
func (r *demoRun) setup(ctx context.Context) error {
	user, pass, err := r.addUser(ctx)
	if err != nil {
		return err
	}
	proxy, err := faultproxy.New(r.b.Addr())
	if err != nil {
		return fmt.Errorf("warren demo: fault proxy: %w", err)
	}
	r.atExit(func() { _ = proxy.Close() })
	r.inj = newDemoInjector(r.b.Faults, proxy, user)
	r.atExit(func() {
		cctx, cancel := demoCleanupCtx(ctx)
		defer cancel()
		if err := r.inj.clearAll(cctx); err != nil {
			r.res.err = errors.Join(r.res.err, fmt.Errorf("warren demo: clearing faults: %w", err))
		}
	})

	u, err := url.Parse(r.b.URL)
	if err != nil {
		return fmt.Errorf("warren demo: broker URL: %w", err)
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	u.Host = proxy.Addr()
	via := u.String()
	r.queue = "warren-demo-" + r.runID
	r.con.logf("supervisors: publisher and consumer via the fault proxy %s -> %s, heartbeat %v; queue %s (durable, persistent messages)",
		proxy.Addr(), r.b.Addr(), demoHeartbeat, r.queue)

	if r.consSup, err = r.newSupervisor(via, demoConsumer); err != nil {
		return err
	}
	if r.pubSup, err = r.newSupervisor(via, demoPublisher); err != nil {
		return err
	}
	r.tr = &demoTraffic{queue: r.queue, rate: r.cfg.rate, led: r.led}
	// Both declare the queue: a publisher that reconnects first must not
	// publish into a queue that does not exist yet (the message would be
	// unroutable; Mandatory makes that an error rather than a silent drop).
	for _, s := range []*conn.Supervisor{r.consSup, r.pubSup} {
		if _, err := s.DeclareTopology(ctx, conn.Topology{Queues: []*conn.Queue{{Name: r.queue, Durable: true}}}); err != nil {
			return fmt.Errorf("warren demo: declare queue: %w", err)
		}
	}
	if r.cons, err = r.consSup.Consume(ctx, conn.NamedQueue(r.queue), r.tr.handle, conn.ConsumerOptions{Name: "warren-demo-" + r.runID}); err != nil {
		return fmt.Errorf("warren demo: consume: %w", err)
	}
	if r.pub, err = r.pubSup.NewPublisher(ctx, conn.PublisherOptions{Name: "warren-demo", Mandatory: true}); err != nil {
		return fmt.Errorf("warren demo: publisher: %w", err)
	}
	r.tr.pub = r.pub
	rctx, cancel := context.WithTimeout(ctx, demoReadyTimeout)
	defer cancel()
	if !r.trk.waitHealthy(rctx) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("warren demo: supervisors not Ready within %v (publisher: %v, consumer: %v)",
			demoReadyTimeout, demoErrOrState(r.pubSup), demoErrOrState(r.consSup))
	}
	return nil
}

func demoErrOrState(s *conn.Supervisor) string {
	if err := s.Err(); err != nil {
		return err.Error()
	}
	return s.State().String()
}

// addUser creates the demo's own broker user, so a forced close kills the
// demo's connections and nobody else's. Without user management (AMQP_URL
// with neither rabbitmqctl nor the management API) the demo connects as the
// URL's user and cannot inject a forced close.
func (r *demoRun) addUser(ctx context.Context) (user, pass string, err error) {
	user, pass = "warren-demo-"+r.runID, "demo-"+demoRandomID()+demoRandomID()
	uri, err := amqp.ParseURI(r.b.URL)
	if err != nil {
		return "", "", fmt.Errorf("warren demo: broker URL: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, demoFaultCallTimeout)
	defer cancel()
	err = r.b.Faults.AddUser(fctx, user, pass)
	if errors.Is(err, broker.ErrUnsupported) {
		r.warnf("connecting as the URL's user: %v", err)
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("warren demo: add user: %w", err)
	}
	r.atExit(func() {
		if r.b.Source != broker.SourceURL {
			// A node or container Find started is deleted with everything
			// in it; a rabbitmqctl call here would only delay the report.
			return
		}
		cctx, cancel := demoCleanupCtx(ctx)
		defer cancel()
		if err := r.b.Faults.DeleteUser(cctx, user); err != nil {
			r.warnf("delete user %s: %v", user, err)
		}
	})
	if err := r.b.Faults.SetPermissions(fctx, uri.Vhost, user); err != nil {
		return "", "", fmt.Errorf("warren demo: set permissions: %w", err)
	}
	return user, pass, nil
}

func (r *demoRun) newSupervisor(via string, side demoSide) (*conn.Supervisor, error) {
	s, err := conn.New(conn.Options{
		URLs:           []string{via},
		ConnectionName: "warren-demo-" + side.String(),
		Heartbeat:      demoHeartbeat,
		DialTimeout:    demoDialTimeout,
		Reconnect:      demoPolicy(),
		Logger:         r.log,
		OnEvent:        r.onEvent(side),
		EventBuffer:    demoEventBuffer,
	})
	if err != nil {
		return nil, fmt.Errorf("warren demo: %v supervisor: %w", side, err)
	}
	r.atExit(func() {
		cctx, cancel := context.WithTimeout(context.Background(), demoCloseTimeout)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			r.warnf("close %v supervisor: %v", side, err)
		}
	})
	return s, nil
}

// run publishes, injects the faults, then drains and accounts.
func (r *demoRun) run(ctx, hard context.Context) {
	r.start = time.Now()
	r.res.start = r.start
	r.con.setStart(r.start)
	r.con.logf("publishing %d msg/s for %v; faults: %s", r.cfg.rate, r.cfg.duration, demoFaultList(r.cfg.faults))

	msgCtx, msgCancel := context.WithCancel(hard)
	defer msgCancel()
	stop := make(chan struct{})
	out := make(chan demoPending, conn.DefaultMaxInFlight)
	var pacer, settler sync.WaitGroup
	pacer.Add(1)
	go func() {
		defer pacer.Done()
		r.tr.publishLoop(msgCtx, stop, out)
	}()
	settled := make(chan struct{})
	settler.Add(1)
	go func() {
		defer settler.Done()
		defer close(settled)
		r.tr.settleLoop(msgCtx, out)
	}()
	statusDone := make(chan struct{})
	var status sync.WaitGroup
	status.Add(1)
	go func() {
		defer status.Done()
		r.statusLoop(statusDone)
	}()
	defer func() {
		close(statusDone)
		status.Wait()
		r.con.endStatus()
	}()

	r.runFaults(ctx)
	close(stop)
	pacer.Wait()
	close(out)
	elapsed := time.Since(r.start)
	r.trk.update(func(rec *demoFaultRecord) { rec.Republished = r.pubSup.Stats().Republished - rec.repBase })
	r.trk.finish()
	r.res.interrupted = ctx.Err() != nil
	if rejected := r.tr.rejected.Load(); rejected > 0 {
		r.warnf("%d publishes were refused before acceptance (last: %v)", rejected, *r.tr.lastReject.Load())
	}

	patience := func(d time.Duration) (context.Context, context.CancelFunc) {
		if ctx.Err() != nil {
			d = demoInterruptedDrain
		}
		return context.WithTimeout(hard, d)
	}
	pub, conf, recv := r.led.progress()
	r.con.logf("publishing stopped (%d published, %d confirmed, %d consumed); waiting for confirms and the consumer to drain", pub, conf, recv)
	sctx, cancel := patience(demoSettleTimeout)
	select {
	case <-settled:
	case <-sctx.Done():
		r.warnf("confirms still outstanding after the settle timeout; closing the publisher fails them")
	}
	cancel()
	dctx, cancel := patience(demoDrainTimeout)
	drained := r.led.waitDrained(dctx)
	cancel()

	// Cut short by Ctrl-C, the drain proves nothing: keep what was not
	// consumed in the queue, where it can be inspected.
	unverified := !drained && r.res.interrupted
	r.shutdown(!unverified)
	// Publisher.Close has settled every message, so the settle loop
	// finishes on its own; cancelling first could skip recording some.
	sctx, cancel = patience(demoCloseTimeout)
	select {
	case <-settled:
	case <-sctx.Done():
	}
	cancel()
	msgCancel()
	settler.Wait()
	pubStats, consStats := r.pubSup.Stats(), r.consSup.Stats()
	r.res.faults = r.trk.faults()
	r.res.totals = demoTotals{
		demoLedgerTotals: r.led.totals(),
		Republished:      pubStats.Republished,
		Reconnects:       [demoNumSides]uint64{pubStats.Reconnects, consStats.Reconnects},
		Drained:          drained,
		Elapsed:          elapsed,
		Queue:            r.queue,
	}
	if unverified {
		r.res.totals.Unverified, r.res.totals.Lost, r.res.totals.LostIDs = r.res.totals.Lost, 0, nil
	}
}

// shutdown closes the publisher (settling anything left) and the consumer,
// deletes the demo's queue if deleteQueue, and closes both supervisors.
func (r *demoRun) shutdown(deleteQueue bool) {
	ctx, cancel := context.WithTimeout(context.Background(), demoCloseTimeout)
	defer cancel()
	if err := r.pub.Close(ctx); err != nil {
		r.warnf("close publisher: %v", err)
	}
	if err := r.cons.Close(ctx); err != nil {
		r.warnf("close consumer: %v", err)
	}
	if !deleteQueue {
		r.con.logf("keeping queue %s: it holds the messages the interrupted drain did not consume", r.queue)
	} else if err := r.deleteQueue(ctx); err != nil {
		r.warnf("delete queue %s: %v", r.queue, err)
	}
	for _, s := range []*conn.Supervisor{r.pubSup, r.consSup} {
		if err := s.Close(ctx); err != nil {
			r.warnf("close supervisor: %v", err)
		}
	}
}

func (r *demoRun) deleteQueue(ctx context.Context) error {
	ch, err := r.consSup.Channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close()
	_, err = ch.QueueDelete(r.queue, false, false, false)
	return err
}

// runFaults injects the planned faults, then waits out the rest of the
// publishing time. It returns early when ctx ends, with every fault cleared.
func (r *demoRun) runFaults(ctx context.Context) {
	ready := r.start // the earliest time the next fault may start
	for _, slot := range planDemoFaults(r.cfg.duration, r.cfg.faults) {
		at := r.start.Add(slot.at)
		if at.Before(ready) {
			at = ready
		}
		if reconnect.Wait(ctx, time.Until(at), nil) != nil {
			return
		}
		r.inject(ctx, slot)
		if ctx.Err() != nil {
			return
		}
		if err := r.stopped(); err != nil {
			r.res.err = errors.Join(r.res.err, err)
			return
		}
		ready = time.Now().Add(demoMinGap)
	}
	end := r.start.Add(r.cfg.duration)
	if end.Before(ready) {
		end = ready
	}
	_ = reconnect.Wait(ctx, time.Until(end), nil)
}

// inject runs one fault: inject, hold, clear, and wait for both supervisors
// to recover.
func (r *demoRun) inject(ctx context.Context, slot demoFaultSlot) {
	k := slot.kind
	// Close the previous fault's window: its republications end here.
	r.trk.update(func(rec *demoFaultRecord) { rec.Republished = r.pubSup.Stats().Republished - rec.repBase })
	r.con.logf("%s: %s", k, k.action())
	r.setPhase("%s: injecting", k)
	defer r.setPhase("")
	start := time.Now()
	r.trk.begin(k, start)
	repBase := r.pubSup.Stats().Republished
	fctx, cancel := context.WithTimeout(ctx, demoFaultCallTimeout)
	err := r.inj.inject(fctx, k)
	cancel()
	injected := time.Now()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", errDemoInterrupted, err)
	}
	r.trk.update(func(rec *demoFaultRecord) { rec.Injected, rec.Err, rec.repBase = injected, err, repBase })
	switch {
	case errors.Is(err, errDemoInterrupted):
		r.con.logf("%s: injection interrupted by Ctrl-C; clearing it in case it took effect", k)
	case err != nil:
		r.con.logf("%s: not injected: %s", k, demoFirstLine(err.Error()))
	case slot.hold > 0:
		r.setPhase("%s: held %v", k, slot.hold)
		_ = reconnect.Wait(ctx, slot.hold, nil)
	}
	// Cleared even when the injection failed or was interrupted: a call
	// cut short may have taken effect.
	wasOn := r.inj.isActive(k)
	r.setPhase("%s: %s", k, k.undoVerb())
	cctx, cancel := demoCleanupCtx(ctx)
	clearErr := r.inj.clear(cctx, k)
	cancel()
	if clearErr != nil {
		r.res.err = errors.Join(r.res.err, clearErr)
		r.con.logf("%s: %v", k, clearErr)
		return
	}
	if wasOn {
		cleared := time.Now()
		r.trk.update(func(rec *demoFaultRecord) { rec.Cleared = cleared })
		r.con.logf("%s: %s", k, k.undoAction())
	}
	r.setPhase("%s: recovering", k)
	rctx, cancel := context.WithTimeout(ctx, demoRecoverTimeout)
	defer cancel()
	if !r.trk.waitHealthy(rctx) && ctx.Err() == nil && r.stopped() == nil {
		r.warnf("%s: supervisors not Ready within %v of clearing the fault", k, demoRecoverTimeout)
	}
}

// stopped returns an error if a supervisor has stopped for good (a
// permanent error), which ends the run: nothing would recover.
func (r *demoRun) stopped() error {
	for _, s := range []*conn.Supervisor{r.pubSup, r.consSup} {
		if s.State() == conn.Closed {
			return fmt.Errorf("warren demo: a supervisor stopped: %v", demoErrOrState(s))
		}
	}
	return nil
}

func (r *demoRun) setPhase(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	r.phase.Store(&p)
}

func (r *demoRun) phaseText() string {
	if p := r.phase.Load(); p != nil {
		return *p
	}
	return ""
}

func demoFaultList(kinds []demoFault) string {
	if len(kinds) == 0 {
		return "none"
	}
	return joinDemoFaults(kinds)
}

// statusLoop refreshes the status line until done is closed.
func (r *demoRun) statusLoop(done <-chan struct{}) {
	ticker := time.NewTicker(r.con.statusInterval())
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
		}
		v := r.statusView()
		if r.con.tty {
			r.con.showStatus(v.Compact())
		} else {
			r.con.showStatus(v.String())
		}
	}
}

func (r *demoRun) statusView() demoStatusView {
	pubStats, consStats := r.pubSup.Stats(), r.consSup.Stats()
	published, confirmed, received := r.led.progress()
	side := r.trk.side(demoPublisher)
	return demoStatusView{
		Elapsed:         time.Since(r.start),
		State:           pubStats.State,
		Blocked:         pubStats.Blocked,
		Published:       published,
		Confirmed:       confirmed,
		Consumed:        received,
		Reconnects:      pubStats.Reconnects + consStats.Reconnects,
		LastOutage:      side.lastOutage,
		LastOutageFault: side.lastOutageFault,
		Fault:           r.phaseText(),
	}
}
