package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warrenmq/warren/integration/internal/dockerengine"
)

// Bounds for Main. A local node boots in 5 to 15 s; several test binaries
// booting at once on a small machine take longer.
const (
	findTimeout      = 2 * time.Minute
	mainCloseTimeout = 2 * time.Minute
)

// shared is the broker Main found, for Shared.
var shared atomic.Pointer[Broker]

// Main runs a test binary's tests against one broker: call it from TestMain.
// It finds a broker (bounded by 2 minutes), runs the tests, closes the
// broker, checks for leaked goroutines (goleak), and exits with the tests'
// status, or 1 if closing or the leak check failed. When no broker can be
// found it says how to get one and exits with status 1: integration tests
// never skip. On SIGINT or SIGTERM it stops the broker before exiting.
func Main(m *testing.M) {
	MainWith(m, Options{})
}

// MainWith is Main with options for FindWith.
func MainWith(m *testing.M, opts Options) {
	os.Exit(runMain(m, opts))
}

// RunWith is MainWith that returns the exit code instead of exiting, for a
// TestMain that has something of its own to clean up afterwards (the
// certificate files of Options.TLS).
func RunWith(m *testing.M, opts Options) int {
	return runMain(m, opts)
}

// Shared returns the broker Main found. It fails the test if the test
// binary's TestMain did not call Main.
func Shared(t testing.TB) *Broker {
	t.Helper()
	b := shared.Load()
	if b == nil {
		t.Fatal("broker.Shared: no broker; call broker.Main(m) from TestMain")
	}
	return b
}

func runMain(m interface{ Run() int }, opts Options) int {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	findCtx, cancel := context.WithTimeout(sigCtx, findTimeout)
	b, err := FindWith(findCtx, logf, opts)
	cancel()
	if err != nil {
		switch {
		case sigCtx.Err() != nil:
			logf("FAIL: interrupted while finding a broker: %v", err)
		case errors.Is(err, ErrNoBroker):
			logf("FAIL: %v", err)
		default:
			logf("FAIL: could not get a RabbitMQ broker: %v\n%s", err, howToGetBroker)
		}
		return 1
	}
	shared.Store(b)

	runDone := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-runDone:
		case <-sigCtx.Done():
			// Tests are still running: stop the node so it does not
			// outlive the binary, then exit. A second signal kills at once.
			stopSignals()
			logf("broker: interrupted; stopping the broker")
			if err := closeShared(b); err != nil {
				logf("FAIL: stopping the broker: %v", err)
			}
			os.Exit(1)
		}
	}()
	code := m.Run()
	close(runDone)
	<-watcherDone
	stopSignals()

	if err := closeShared(b); err != nil {
		logf("FAIL: stopping the broker: %v", err)
		code = max(code, 1)
	}
	if err := goleak.Find(leakOptions(b)...); err != nil {
		logf("FAIL: goroutines leaked: %v", err)
		code = max(code, 1)
	}
	return code
}

func closeShared(b *Broker) error {
	ctx, cancel := context.WithTimeout(context.Background(), mainCloseTimeout)
	defer cancel()
	return b.Close(ctx)
}

// leakOptions ignores goroutines the Docker engine keeps for the life of
// the process (testcontainers-go's reaper connection), which are not the
// tests' leaks.
func leakOptions(b *Broker) []goleak.Option {
	e := dockerengine.Get()
	if b.Source != SourceDocker || e == nil {
		return nil
	}
	var opts []goleak.Option
	for _, fn := range e.LeakIgnores() {
		opts = append(opts, goleak.IgnoreAnyFunction(fn))
	}
	return opts
}

// Current returns the broker Main, MainWith or RunWith found for this test
// binary, or nil when none did (package warrentest starts one per test then).
func Current() *Broker { return shared.Load() }
