package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Defaults of the demo's flags: 40 s of faults plus a broker's boot and stop
// keep `make demo` under a minute on a quiet machine.
const (
	defaultDemoDuration = 40 * time.Second
	defaultDemoRate     = 200
	maxDemoRate         = 100000
)

// errDemoUsage marks a command line the demo cannot run with; demoMain
// answers it with exit code 2.
var errDemoUsage = errors.New("warren demo: bad usage")

// demoConfig is what the demo's flags ask for.
type demoConfig struct {
	// duration is how long faults are injected and messages published.
	duration time.Duration
	// rate is the publish rate in messages per second.
	rate int
	// faults are injected in this order, one per slot of the schedule.
	faults []demoFault
	// verbose sends warren's own warnings to stderr.
	verbose bool
}

// parseDemoFlags parses the demo's command line; errors wrap errDemoUsage
// (flag's own -h answer wraps flag.ErrHelp instead).
func parseDemoFlags(args []string, stderr io.Writer) (demoConfig, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: warren demo [-duration 40s] [-rate 200] [-faults close,partition,alarm,stop] [-v]

Runs a warren publisher and consumer against a real RabbitMQ (AMQP_URL, else
Docker, else a private local node) through a fault proxy, injects faults on a
schedule, and ends with a table per fault and the count of confirmed messages
lost (exit 1 if any). Ctrl-C stops cleanly; a second Ctrl-C skips the drain.

`)
		fs.PrintDefaults()
	}
	cfg := demoConfig{}
	fs.DurationVar(&cfg.duration, "duration", defaultDemoDuration, "how long to publish and inject faults")
	fs.IntVar(&cfg.rate, "rate", defaultDemoRate, "messages published per second")
	faults := fs.String("faults", joinDemoFaults(allDemoFaults), "comma-separated faults to inject, in order: close, partition, alarm, stop (or none)")
	fs.BoolVar(&cfg.verbose, "v", false, "log warren's warnings to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, fmt.Errorf("%w: %w", errDemoUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected arguments %q", errDemoUsage, fs.Args())
	}
	if cfg.duration < time.Second {
		return cfg, fmt.Errorf("%w: -duration must be at least 1s, got %v", errDemoUsage, cfg.duration)
	}
	if cfg.rate < 1 || cfg.rate > maxDemoRate {
		return cfg, fmt.Errorf("%w: -rate must be in [1,%d], got %d", errDemoUsage, maxDemoRate, cfg.rate)
	}
	kinds, err := parseDemoFaults(*faults)
	if err != nil {
		return cfg, fmt.Errorf("%w: -faults: %w", errDemoUsage, err)
	}
	cfg.faults = kinds
	return cfg, nil
}

// parseDemoFaults parses a comma-separated fault list; "" and "none" mean no
// faults. A fault may appear more than once.
func parseDemoFaults(s string) ([]demoFault, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var kinds []demoFault
	for _, name := range strings.Split(s, ",") {
		k, ok := demoFaultByName(strings.TrimSpace(name))
		if !ok {
			return nil, fmt.Errorf("unknown fault %q (want %s)", name, joinDemoFaults(allDemoFaults))
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func joinDemoFaults(kinds []demoFault) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	return strings.Join(names, ",")
}
