package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/warrenmq/warren/integration/broker"
)

// Broker bounds: a private node boots in 5 to 20 s on a small, busy machine.
const (
	demoFindTimeout        = 3 * time.Minute
	demoBrokerCloseTimeout = 2 * time.Minute
)

// demoNoBrokerAdvice tells a user without a broker what to install.
// The CLI has no Docker path (it does not link testcontainers-go): with
// Docker, run a broker yourself and pass its AMQP_URL.
const demoNoBrokerAdvice = `warren demo needs a RabbitMQ broker, found in this order:
  - AMQP_URL=amqp://user:pass@host:5672/ (with RABBITMQ_NODENAME=rabbit@host so faults can use rabbitmqctl);
  - a local RabbitMQ installation, from which the demo starts a private node of its own:
      Debian/Ubuntu: sudo apt-get install rabbitmq-server   (or run "make demo" as root: it installs it)
      macOS:         brew install rabbitmq
  - with Docker: docker run -d -p 127.0.0.1:5672:5672 rabbitmq:3.13-management, then AMQP_URL=amqp://guest:guest@127.0.0.1:5672/`

// demoMain is "warren demo": it finds or starts a broker, runs the demo on
// it, stops the broker, prints the report and returns the exit code: 0 when
// no confirmed message was lost, 1 when one was (or the demo could not run),
// 2 for bad flags, 130 after Ctrl-C.
func demoMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseDemoFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return demoExitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return demoExitUsage
	}
	ctx, hard, stopSignals := demoSignals(stderr)
	defer stopSignals()

	con := newDemoConsole(stdout)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	con.logf("warren demo: finding a RabbitMQ broker (AMQP_URL, Docker, or a private local node)...")
	findCtx, cancel := context.WithTimeout(ctx, demoFindTimeout)
	b, err := broker.FindWith(findCtx, func(format string, args ...any) { con.logf(format, args...) }, broker.Options{})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "warren demo: interrupted while finding a broker: %s\n", demoFirstLine(err.Error()))
			return demoExitInterrupted
		}
		reportNoBroker(stderr, err)
		return demoExitFailed
	}

	res := runDemo(ctx, hard, b, cfg, con, logger)

	if b.Source != broker.SourceURL {
		con.logf("stopping the broker the demo started...")
	}
	cctx, cancel := context.WithTimeout(context.Background(), demoBrokerCloseTimeout)
	defer cancel()
	if err := b.Close(cctx); err != nil {
		res.warnings = append(res.warnings, "stop broker: "+err.Error())
	}
	writeDemoReport(stdout, res)
	return res.exitCode()
}

// reportNoBroker says why no broker could be had and, when none was found
// at all, what to install. Find's own advice is about the tests, so only its
// first line (the reasons) is kept.
func reportNoBroker(w io.Writer, err error) {
	fmt.Fprintf(w, "warren demo: %s\n", demoFirstLine(err.Error()))
	if errors.Is(err, broker.ErrNoBroker) {
		fmt.Fprintln(w, demoNoBrokerAdvice)
	}
}

// demoSignals returns ctx, which the first SIGINT or SIGTERM cancels (stop
// faults and publishing, then drain and close cleanly), and hard, which the
// second cancels (skip the drain). After the second, signals get their
// default behaviour back, so a third kills the process.
func demoSignals(stderr io.Writer) (ctx, hard context.Context, stop func()) {
	hard, cancelHard := context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(hard)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for n := 1; ; n++ {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if n == 1 {
				fmt.Fprintln(stderr, "\nwarren demo: interrupted; clearing faults, draining and closing (Ctrl-C again to skip the drain)")
				cancel()
				continue
			}
			fmt.Fprintln(stderr, "\nwarren demo: skipping the drain; clearing faults and stopping the broker (Ctrl-C again to kill)")
			signal.Stop(sigs)
			cancelHard()
			return
		}
	}()
	return ctx, hard, func() {
		signal.Stop(sigs)
		close(done)
		<-exited
		cancel()
		cancelHard()
	}
}

// writeDemoReport prints the final report: warnings, the per-fault table and
// the totals with the verdict, which is the last line.
func writeDemoReport(w io.Writer, res demoResult) {
	fmt.Fprintln(w)
	for _, msg := range res.warnings {
		fmt.Fprintln(w, "warning: "+msg)
	}
	if res.err != nil {
		fmt.Fprintf(w, "warren demo: %v\n", strings.ReplaceAll(res.err.Error(), "\n", "; "))
	}
	if res.start.IsZero() {
		return
	}
	if res.interrupted {
		fmt.Fprintln(w, "interrupted: the run was cut short by Ctrl-C")
	}
	writeDemoFaultTable(w, res.start, res.faults)
	fmt.Fprintln(w)
	writeDemoTotals(w, res.totals)
}
