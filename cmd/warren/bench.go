package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// Bounds on the coordinator's own steps.
const (
	benchBrokerFindTimeout  = 3 * time.Minute
	benchBrokerCloseTimeout = 2 * time.Minute
	benchAdminTimeout       = 30 * time.Second
)

// benchConfig is what warren bench measures, from its flags.
type benchConfig struct {
	jsonPath   string
	renderPath string
	scenarios  []string

	n, size, window, runs int
	tpContenders          []string

	idleFor  time.Duration
	idleRuns int

	kills       int
	killSpacing time.Duration

	detections      int
	detectHeartbeat time.Duration

	lossN, lossRate int
	killEvery       time.Duration
	killFor         time.Duration
	lossDeadline    time.Duration

	sweepKinds               []string
	sweepDurations           []time.Duration
	sweepReps                int
	sweepGapMin, sweepGapMax time.Duration
	sweepSeed                int64
	sweepHeartbeat           time.Duration

	fleetN         int
	fleetRuns      int
	fleetHeartbeat time.Duration

	naiveDelay, resetAfter time.Duration
	debug                  bool
	command                string
}

var benchScenarios = []string{scenThroughput, scenIdle, scenFleet, scenOutage, scenSweep, scenDetection, scenLoss}

// benchHelp is what warren bench -h prints, before the flags.
const benchHelp = `
usage: warren bench [-quick] [-json FILE] [-scenarios throughput,idle,fleet,outage,sweep,detection,loss] [flags]

Measures warren against raw amqp091-go, a naive reconnect loop and
amqp091-go's own recovery, each in a worker process of its own, against a
real RabbitMQ (AMQP_URL, else Docker, else a private local node). Prints a
table per scenario; BENCHMARKS.md explains them. Takes about 15 minutes,
a minute with -quick.

`

// errBenchHelp ends parseBenchFlags after -h printed the help.
var errBenchHelp = errors.New("bench: help printed")

// errBenchUsage is wrapped by the error of a bench command line that cannot
// be run.
var errBenchUsage = errors.New("bench: usage")

// parseBenchFlags reads the coordinator's flags; -quick scales every count
// down. -h prints the help on stdout and returns errBenchHelp; flags may
// come in any order, with no other arguments.
func parseBenchFlags(args []string, stdout, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.jsonPath, "json", "", "also write the results as JSON lines to this file")
	fs.StringVar(&c.renderPath, "render", "", "measure nothing: print the table of an earlier run's -json file (give the same -scenarios and counts)")
	scen := fs.String("scenarios", strings.Join(benchScenarios, ","), "scenarios to run, in this order")
	fs.IntVar(&c.n, "n", 50000, "throughput: messages per run")
	fs.IntVar(&c.size, "size", 100, "message body bytes")
	fs.IntVar(&c.window, "window", 256, "publish window (unconfirmed messages) and consumer prefetch")
	fs.IntVar(&c.runs, "runs", 3, "throughput: runs per contender, interleaved; the median is reported")
	tp := fs.String("throughput-contenders", "raw,warren", "throughput: contenders (raw, naive, recovery, warren)")
	fs.DurationVar(&c.idleFor, "idle", 10*time.Second, "idle: window length")
	fs.IntVar(&c.idleRuns, "idle-runs", 5, "idle: rounds (all contenders at once); the median is reported")
	fs.IntVar(&c.fleetN, "fleet-n", 500, "fleet: clients (connection + publishing channel) in one worker")
	fs.IntVar(&c.fleetRuns, "fleet-runs", 5, "fleet: idle rounds of one client (all contenders at once); the median is reported")
	fs.DurationVar(&c.fleetHeartbeat, "fleet-heartbeat", time.Second, "fleet: AMQP heartbeat of the idle client")
	fs.IntVar(&c.kills, "kills", 10, "outage: broker-side kills per contender")
	fs.DurationVar(&c.killSpacing, "kill-spacing", 1500*time.Millisecond, "outage: time from ready to the next kill")
	fs.IntVar(&c.detections, "detections", 5, "detection: blackholes per contender")
	fs.DurationVar(&c.detectHeartbeat, "detect-heartbeat", time.Second, "detection: AMQP heartbeat")
	fs.IntVar(&c.lossN, "loss-n", 5000, "loss: messages per contender")
	fs.IntVar(&c.lossRate, "loss-rate", 1000, "loss: messages per second")
	fs.DurationVar(&c.killEvery, "kill-every", 700*time.Millisecond, "loss: interval between kills")
	fs.DurationVar(&c.killFor, "kill-for", 12*time.Second, "loss: stop killing after this long")
	fs.DurationVar(&c.lossDeadline, "loss-deadline", 45*time.Second, "loss: bound on each contender's run")
	fs.DurationVar(&c.naiveDelay, "naive-delay", time.Second, "naive: wait after a failed dial (amqp091-go's example uses 5s)")
	kinds := fs.String("sweep-kinds", strings.Join(sweepKindsDefault, ","), "sweep: fault kinds (kill, stop_app, partition; restart is opt-in)")
	durs := fs.String("sweep-durations", "1s,5s,15s", "sweep: how long stop_app and partition faults are held")
	long := fs.Bool("sweep-long", false, "sweep: also hold faults for 60s (adds about 7 minutes)")
	fs.IntVar(&c.sweepReps, "sweep-reps", 3, "sweep: faults per (kind, duration); median and max are reported")
	fs.DurationVar(&c.sweepGapMin, "sweep-gap-min", 2*time.Second, "sweep: shortest healthy time between faults")
	fs.DurationVar(&c.sweepGapMax, "sweep-gap-max", 20*time.Second, "sweep: longest healthy time between faults")
	fs.Int64Var(&c.sweepSeed, "sweep-seed", 15, "sweep: seed of the fault order and the healthy gaps")
	fs.DurationVar(&c.sweepHeartbeat, "sweep-heartbeat", time.Second, "sweep: AMQP heartbeat of the partition phase, short so that partitions are noticed (the other faults run with the default)")
	fs.DurationVar(&c.resetAfter, "reset-after", 0, "warren: reconnect.Policy.ResetAfter (0: the policy's default)")
	fs.BoolVar(&c.debug, "debug", false, "workers log amqp091-go's messages, copied to stderr")
	quick := fs.Bool("quick", false, "a smoke run with small counts (about a minute); figures are not meaningful")
	rest, exit, ok := parseCommand(fs, args, benchHelp, stdout, stderr)
	switch {
	case !ok && exit == 0:
		return c, errBenchHelp
	case !ok:
		return c, errBenchUsage
	case len(rest) != 0:
		return c, fmt.Errorf("%w: unexpected arguments %q", errBenchUsage, rest)
	}
	if *quick {
		c.n, c.runs, c.idleFor, c.idleRuns, c.kills, c.detections = 2000, 1, 2*time.Second, 1, 2, 1
		c.lossN, c.killFor, c.lossDeadline = 1500, 3*time.Second, 30*time.Second
		c.fleetN, c.fleetRuns = 20, 1
		*durs, c.sweepReps, c.sweepGapMin, c.sweepGapMax = "1s", 1, 2*time.Second, 3*time.Second
	}
	var err error
	if c.scenarios, err = parseBenchList(*scen, benchScenarios); err != nil {
		return c, err
	}
	if c.tpContenders, err = parseBenchList(*tp, []string{contRaw, contNaive, contRecovery, contWarren}); err != nil {
		return c, err
	}
	if c.sweepKinds, err = parseBenchList(*kinds, sweepKindsAll); err != nil {
		return c, err
	}
	if c.sweepDurations, err = parseSweepDurations(*durs); err != nil {
		return c, err
	}
	if *long {
		c.sweepDurations = append(c.sweepDurations, time.Minute)
	}
	if c.sweepGapMin <= 0 || c.sweepGapMax < c.sweepGapMin {
		return c, fmt.Errorf("bench: want 0 < -sweep-gap-min <= -sweep-gap-max, got %v and %v", c.sweepGapMin, c.sweepGapMax)
	}
	if c.n < 1 || c.sweepReps < 1 || c.runs < 1 || c.window < 1 || c.size < benchMinBody || c.kills < 1 || c.idleRuns < 1 || c.detections < 1 || c.lossN < 1 || c.lossRate < 1 || c.fleetN < 1 || c.fleetRuns < 1 {
		return c, fmt.Errorf("bench: counts must be positive and -size at least %d", benchMinBody)
	}
	c.command = "warren bench " + strings.Join(args, " ")
	return c, nil
}

func parseBenchList(s string, known []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(known, f) {
			return nil, fmt.Errorf("bench: unknown name %q (want one of %s)", f, strings.Join(known, ", "))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("bench: empty list")
	}
	return out, nil
}

// benchMain runs the bench coordinator, or with "worker" first one worker
// process (the coordinator starts those itself).
func benchMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "worker" {
		return workerMain(args[1:], os.Stdin, stdout, stderr)
	}
	cfg, err := parseBenchFlags(args, stdout, stderr)
	switch {
	case errors.Is(err, errBenchHelp):
		return 0
	case errors.Is(err, errBenchUsage):
		if err != errBenchUsage { // parseCommand has said what was wrong already
			fmt.Fprintln(stderr, err)
		}
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rep *benchReport
	if cfg.renderPath != "" {
		rep, err = renderBench(cfg.renderPath, cfg)
	} else {
		rep, err = runBench(ctx, cfg, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rep.writeMarkdown(stdout)
	if cfg.jsonPath != "" && cfg.renderPath == "" {
		if err := writeBenchJSON(cfg.jsonPath, rep); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

// writeBenchJSON writes the report as JSON lines to path.
func writeBenchJSON(path string, rep *benchReport) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := rep.writeJSONLines(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return f.Close()
}

// bench is one coordinator run: one broker, one admin connection, one user
// per contender, and the samples collected so far.
type bench struct {
	cfg     benchConfig
	exe     string
	b       *broker.Broker
	admin   benchAdmin
	conn    *amqp.Connection // admin connection: queues and verification
	logw    io.Writer
	samples []benchSample
}

// benchContenders are every contender, in table order.
var benchContenders = []string{contRaw, contNaive, contRecovery, contWarren}

// benchReconnecting are the contenders that survive a lost connection.
var benchReconnecting = []string{contNaive, contRecovery, contWarren}

// runBench finds or starts one broker, runs the configured scenarios against
// it, and returns the report. Failed runs are recorded as such, not fatal.
func runBench(ctx context.Context, cfg benchConfig, logw io.Writer) (*benchReport, error) {
	start := time.Now()
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: cannot find my own executable to run workers: %w", err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, format+"\n", args...) }
	findCtx, cancel := context.WithTimeout(ctx, benchBrokerFindTimeout)
	b, err := broker.FindWith(findCtx, logf, broker.Options{Management: true})
	cancel()
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), benchBrokerCloseTimeout)
		defer cancel()
		if err := b.Close(cctx); err != nil {
			logf("bench: closing the broker: %v", err)
		}
	}()
	bn := &bench{cfg: cfg, exe: exe, b: b, logw: logw}
	if bn.admin, err = newBenchAdmin(b); err != nil {
		return nil, err
	}
	defer bn.admin.release()
	if bn.conn, err = amqp.Dial(b.URL); err != nil {
		return nil, fmt.Errorf("bench: admin connection: %w", err)
	}
	defer func() { bn.conn.Close() }() // stop_app may have replaced it
	env := describeEnv(bn)
	if err := bn.addUsers(ctx); err != nil {
		return nil, err
	}
	defer bn.deleteUsers()
	logf("bench: broker %s %s (%s), kills through the %s; scenarios %s",
		env.RabbitMQ, b.Addr(), b.Source, bn.admin.route(), strings.Join(cfg.scenarios, ", "))

	for _, s := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		begin := time.Now()
		switch s {
		case scenThroughput:
			bn.throughput(ctx)
		case scenIdle:
			bn.idle(ctx)
		case scenFleet:
			bn.fleet(ctx)
		case scenOutage:
			bn.outage(ctx)
		case scenSweep:
			bn.sweep(ctx)
		case scenDetection:
			bn.detection(ctx)
		case scenLoss:
			bn.loss(ctx)
		}
		logf("bench: %s done in %.1fs", s, time.Since(begin).Seconds())
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: interrupted: %w", err)
	}
	rep := buildReport(env, cfg, bn.samples)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func (bn *bench) logf(format string, args ...any) {
	fmt.Fprintf(bn.logw, format+"\n", args...)
}

// record keeps a sample and logs it.
func (bn *bench) record(s benchSample) {
	bn.samples = append(bn.samples, s)
	if s.Err != "" {
		bn.logf("bench: %s %s run %d FAILED: %s", s.Scenario, s.Contender, s.Run, s.Err)
		return
	}
	bn.logf("bench: %s %s run %d: %s", s.Scenario, s.Contender, s.Run, s.describe())
}

// benchUser is the user contender c connects as, so the bench kills exactly
// its connections.
func benchUser(c string) (user, pass string) {
	return "warren-bench-" + c, "bench-pw-" + c
}

func (bn *bench) addUsers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*benchAdminTimeout)
	defer cancel()
	for _, c := range benchContenders {
		user, pass := benchUser(c)
		if err := bn.admin.addUser(ctx, user, pass); err != nil {
			return fmt.Errorf("bench: add user %s: %w", user, err)
		}
	}
	return nil
}

func (bn *bench) deleteUsers() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*benchAdminTimeout)
	defer cancel()
	for _, c := range benchContenders {
		user, _ := benchUser(c)
		if err := bn.admin.deleteUser(ctx, user); err != nil {
			bn.logf("bench: delete user %s: %v", user, err)
		}
	}
}

// userURL is the broker URL with contender c's credentials.
func (bn *bench) userURL(c string) string {
	user, pass := benchUser(c)
	return bn.b.URLWith(user, pass, "/")
}

// benchWithHost returns rawURL with addr ("host:port") as its host.
func benchWithHost(rawURL, addr string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	u.Host = addr
	return u.String()
}

// worker returns the worker configuration every scenario starts from.
func (bn *bench) worker(c, scenario, queue string) workerConfig {
	return workerConfig{
		Contender:  c,
		Scenario:   scenario,
		URL:        bn.userURL(c),
		Queue:      queue,
		ConnName:   "warren-bench-" + c + "-" + scenario,
		N:          bn.cfg.n,
		Size:       bn.cfg.size,
		Window:     bn.cfg.window,
		Rate:       bn.cfg.lossRate,
		Heartbeat:  10 * time.Second, // amqp091-go's and warren's default
		Duration:   bn.cfg.idleFor,
		Deadline:   5 * time.Minute,
		NaiveDelay: bn.cfg.naiveDelay,
		ResetAfter: bn.cfg.resetAfter,
	}
}

// start runs one worker process.
func (bn *bench) start(cfg workerConfig) (*benchChild, error) {
	var echo io.Writer
	if bn.cfg.debug {
		cfg.Debug = true
		echo = bn.logw
	}
	return startBenchChild(bn.exe, cfg, echo)
}

// freshQueue deletes and declares queue, durable or not, on a channel of
// its own (a refused declaration closes the channel).
func (bn *bench) freshQueue(queue string, durable bool) error {
	ch, err := bn.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		return err
	}
	_, err = ch.QueueDeclare(queue, durable, false, false, false, nil)
	return err
}

func (bn *bench) deleteQueue(queue string) {
	ch, err := bn.conn.Channel()
	if err == nil {
		_, err = ch.QueueDelete(queue, false, false, false)
		ch.Close()
	}
	if err != nil {
		bn.logf("bench: delete queue %s: %v", queue, err)
	}
}

// benchSleep waits d, bounded by ctx.
func benchSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
