package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"runtime"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Contenders and scenarios, as named on the command line and in the report.
const (
	contRaw      = "raw"
	contNaive    = "naive"
	contRecovery = "recovery"
	contWarren   = "warren"

	scenThroughput = "throughput"
	scenIdle       = "idle"
	scenOutage     = "outage"
	scenSweep      = "sweep"
	scenDetection  = "detection"
	scenLoss       = "loss"
)

// workerConfig is what one worker process runs: one scenario for one
// contender.
type workerConfig struct {
	Contender  string
	Scenario   string
	URL        string
	Queue      string // published to (throughput, loss) and consumed from
	Consume    string // consumed from instead of Queue, if set
	ConnName   string
	N          int           // messages (throughput, loss)
	Size       int           // body bytes
	Window     int           // unconfirmed publishes and unacknowledged deliveries
	Rate       int           // loss: messages per second
	Heartbeat  time.Duration // proposed to the broker
	Duration   time.Duration // idle: window length
	Deadline   time.Duration // bounds the whole scenario
	NaiveDelay time.Duration // naive: wait after a failed dial
	ResetAfter time.Duration // warren: reconnect.Policy.ResetAfter
	Debug      bool          // log amqp091-go's messages to stderr
}

// args renders c as worker command-line flags.
func (c workerConfig) args() []string {
	return []string{
		"-contender", c.Contender, "-scenario", c.Scenario, "-url", c.URL, "-queue", c.Queue,
		"-consume", c.Consume,
		"-name", c.ConnName, "-n", fmt.Sprint(c.N), "-size", fmt.Sprint(c.Size),
		"-window", fmt.Sprint(c.Window), "-rate", fmt.Sprint(c.Rate),
		"-heartbeat", c.Heartbeat.String(), "-duration", c.Duration.String(),
		"-deadline", c.Deadline.String(), "-naive-delay", c.NaiveDelay.String(),
		"-reset-after", c.ResetAfter.String(), fmt.Sprintf("-debug=%t", c.Debug),
	}
}

// consumeQueue is the queue a long-lived client's consumer subscribes to.
func (c workerConfig) consumeQueue() string {
	if c.Consume != "" {
		return c.Consume
	}
	return c.Queue
}

// parseWorkerFlags reads a worker's flags, as workerConfig.args writes them.
func parseWorkerFlags(args []string, stderr io.Writer) (workerConfig, error) {
	var c workerConfig
	fs := flag.NewFlagSet("bench worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Contender, "contender", "", "raw, naive, recovery or warren")
	fs.StringVar(&c.Scenario, "scenario", "", "throughput, idle, outage, detection, loss or fleet")
	fs.StringVar(&c.URL, "url", "", "broker URL")
	fs.StringVar(&c.Queue, "queue", "", "queue to publish to and consume from")
	fs.StringVar(&c.Consume, "consume", "", "queue to consume from instead of -queue")
	fs.StringVar(&c.ConnName, "name", "warren-bench", "connection_name client property")
	fs.IntVar(&c.N, "n", 0, "messages")
	fs.IntVar(&c.Size, "size", 100, "message body bytes")
	fs.IntVar(&c.Window, "window", 256, "publish window and prefetch")
	fs.IntVar(&c.Rate, "rate", 1000, "loss: messages per second")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 10*time.Second, "AMQP heartbeat")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "idle window")
	fs.DurationVar(&c.Deadline, "deadline", 2*time.Minute, "bound on the whole scenario")
	fs.DurationVar(&c.NaiveDelay, "naive-delay", time.Second, "naive: wait after a failed dial")
	fs.DurationVar(&c.ResetAfter, "reset-after", 0, "warren: reconnect.Policy.ResetAfter (0: the policy's default)")
	fs.BoolVar(&c.Debug, "debug", false, "log amqp091-go's messages to stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.URL == "" || c.Queue == "" {
		return c, errors.New("bench worker: -url and -queue are required")
	}
	if _, ok := contenderImpls[c.Contender]; !ok {
		return c, fmt.Errorf("bench worker: unknown contender %q", c.Contender)
	}
	return c, nil
}

// workerMain runs one scenario for one contender and reports on stdout in
// the worker protocol. Closing stdin tells it to finish (outage) or stop
// early (every other scenario).
func workerMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseWorkerFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	rep := newBenchReporter(stdout)
	if cfg.Debug {
		amqp.SetLogger(log.New(stderr, cfg.Contender+" amqp091-go: ", log.Lmicroseconds))
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Deadline)
	defer cancel()
	stop, cancelStop := context.WithCancel(ctx)
	defer cancelStop()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancelStop()
	}()
	res, err := runWorker(ctx, stop, cfg, rep)
	if err != nil {
		rep.send(benchMsg{Type: wmError, Err: err.Error()})
		return 1
	}
	rep.send(benchMsg{Type: wmResult, Result: res})
	return 0
}

// runWorker dispatches to the scenario. ctx bounds the run; stop also ends
// when the coordinator closes stdin.
func runWorker(ctx, stop context.Context, cfg workerConfig, rep *benchReporter) (*workerResult, error) {
	c := contenderImpls[cfg.Contender]
	switch cfg.Scenario {
	case scenThroughput:
		return c.throughput(stop, cfg)
	case scenIdle:
		return workerIdle(ctx, stop, c, cfg, rep)
	case scenOutage:
		return workerOutage(ctx, stop, c, cfg, rep)
	case scenDetection:
		return workerDetection(ctx, stop, c, cfg, rep)
	case scenLoss:
		return workerLoss(ctx, stop, c, cfg, rep)
	case scenFleet:
		return workerFleet(ctx, stop, cfg)
	}
	return nil, fmt.Errorf("bench worker: unknown scenario %q", cfg.Scenario)
}

// benchContender is one way of talking to RabbitMQ.
type benchContender struct {
	// throughput publishes cfg.N messages with confirms, then consumes them.
	throughput func(ctx context.Context, cfg workerConfig) (*workerResult, error)
	// connect opens a long-lived client with one confirm-mode publishing
	// channel and one consumer on cfg.Queue, and reports its connection
	// changes to live. It returns once the client is publishable.
	connect func(ctx context.Context, cfg workerConfig, live *benchLiveness) (benchClient, error)
}

// benchClient is a connected contender.
type benchClient interface {
	// publishAll publishes message numbers 0..cfg.N-1 at cfg.Rate, with at
	// most cfg.Window unconfirmed, and keeps at it across connection losses
	// the contender's way until every message is confirmed or ctx ends. It
	// returns the set of confirmed messages.
	publishAll(ctx context.Context, cfg workerConfig) (benchBitset, error)
	// close shuts the client down, bounded by ctx.
	close(ctx context.Context) error
}

// contenderImpls are looked up by name.
var contenderImpls = map[string]benchContender{
	contRaw:      {throughput: rawThroughput, connect: connectRaw},
	contNaive:    {throughput: naiveThroughput, connect: connectNaive},
	contRecovery: {throughput: recoveryThroughput, connect: connectRecovery},
	contWarren:   {throughput: warrenThroughput, connect: connectWarren},
}

// benchCloseTimeout bounds a client's shutdown at the end of a scenario.
const benchCloseTimeout = 5 * time.Second

func closeBenchClient(c benchClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), benchCloseTimeout)
	defer cancel()
	return c.close(ctx)
}

// workerIdle connects and measures the worker's own CPU time and context
// switches over cfg.Duration of doing nothing. Only the window is measured:
// process start-up and the connection handshake are not idle work.
func workerIdle(ctx, stop context.Context, c benchContender, cfg workerConfig, rep *benchReporter) (*workerResult, error) {
	live := newBenchLiveness(rep)
	cl, err := c.connect(ctx, cfg, live)
	if err != nil {
		return nil, err
	}
	live.start()
	// Garbage from start-up and the handshake would be collected, and its
	// pages returned to the OS by the runtime's background scavenger, inside
	// the window, at moments that depend on each contender's allocations;
	// doing both first, in every contender alike, leaves the steady state to
	// measure.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcBefore := ms.NumGC
	before, ok := benchSelfUsage()
	if !ok {
		_ = closeBenchClient(cl)
		return nil, errors.New("bench worker: rusage is not available on this platform")
	}
	begin := time.Now()
	t := time.NewTimer(cfg.Duration)
	select {
	case <-t.C:
	case <-stop.Done():
		t.Stop()
	}
	after, _ := benchSelfUsage()
	runtime.ReadMemStats(&ms)
	res := &workerResult{
		GCs:      int(ms.NumGC - gcBefore),
		WindowNS: int64(time.Since(begin)),
		CPUNS:    int64(after.cpu - before.cpu),
		Nvcsw:    after.nvcsw - before.nvcsw,
		Nivcsw:   after.nivcsw - before.nivcsw,
	}
	if err := closeBenchClient(cl); err != nil {
		return nil, err
	}
	if stop.Err() != nil && ctx.Err() == nil && time.Since(begin) < cfg.Duration {
		return nil, errors.New("bench worker: idle window cut short by the coordinator")
	}
	return res, nil
}

// workerOutage stays connected while the coordinator kills the connection, and
// reports every loss and recovery, until the coordinator closes stdin.
func workerOutage(ctx, stop context.Context, c benchContender, cfg workerConfig, rep *benchReporter) (*workerResult, error) {
	live := newBenchLiveness(rep)
	cl, err := c.connect(ctx, cfg, live)
	if err != nil {
		return nil, err
	}
	live.start()
	<-stop.Done()
	return &workerResult{Losses: live.losses()}, closeBenchClient(cl)
}

// workerDetection connects (through the coordinator's fault proxy) and waits
// for the first loss, which the liveness reports as it happens. It returns
// without closing the client: the worker exits next, and closing a client
// that is redialing into a partition can take as long as its dial timeout.
func workerDetection(ctx, stop context.Context, c benchContender, cfg workerConfig, rep *benchReporter) (*workerResult, error) {
	live := newBenchLiveness(rep)
	cl, err := c.connect(ctx, cfg, live)
	if err != nil {
		return nil, err
	}
	live.start()
	defer detectionLoad(ctx, cl, cfg)()
	select {
	case <-live.firstLoss():
		return &workerResult{Losses: 1}, nil
	case <-stop.Done():
		return nil, fmt.Errorf("bench worker: no connection loss noticed: %w", context.Cause(stop))
	}
}

// workerLoss publishes cfg.N messages while the coordinator kills the
// connection, and reports which ones the broker confirmed. The coordinator
// counts what reached the queue.
func workerLoss(ctx, stop context.Context, c benchContender, cfg workerConfig, rep *benchReporter) (*workerResult, error) {
	live := newBenchLiveness(rep)
	cl, err := c.connect(ctx, cfg, live)
	if err != nil {
		return nil, err
	}
	live.start()
	begin := time.Now()
	confirmed, err := cl.publishAll(stop, cfg)
	elapsed := time.Since(begin)
	cerr := closeBenchClient(cl)
	if confirmed == nil {
		return nil, errors.Join(err, cerr)
	}
	// Running out of time is a result (unconfirmed messages), not a failure.
	return &workerResult{
		Messages:  cfg.N,
		Confirmed: confirmed.count(),
		Bitmap:    confirmed.encode(),
		ElapsedNS: int64(elapsed),
		Losses:    live.losses(),
	}, nil
}
