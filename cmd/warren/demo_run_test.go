package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

const (
	// demoRunBound is a correctness bound on a short in-process run, not a
	// timing target: rabbitmqctl calls take seconds on a busy machine.
	demoRunBound = 3 * time.Minute
	// demoBrokerCheckTimeout bounds the checks of the broker after a run.
	demoBrokerCheckTimeout = time.Minute
)

// demoWatchWriter collects output and closes seen once it contains want.
type demoWatchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func newDemoWatchWriter(want string) *demoWatchWriter {
	return &demoWatchWriter{want: want, seen: make(chan struct{})}
}

func (w *demoWatchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *demoWatchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func demoLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		// Error only: dial failures during stop_app are expected and many.
		return slog.New(slog.NewTextHandler(demoTestLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type demoTestLogWriter struct{ t *testing.T }

func (w demoTestLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runDemoBounded runs the demo in process and fails the test if it does not
// return within demoRunBound.
func runDemoBounded(t *testing.T, ctx context.Context, b *broker.Broker, cfg demoConfig, out io.Writer) demoResult {
	t.Helper()
	done := make(chan demoResult, 1)
	go func() { done <- runDemo(ctx, context.Background(), b, cfg, newDemoConsole(out), demoLogger(t)) }()
	select {
	case res := <-done:
		return res
	case <-time.After(demoRunBound):
		t.Fatalf("the demo did not return within %v", demoRunBound)
		return demoResult{}
	}
}

// TestDemoAllFaultsLoseNoConfirmedMessage runs the whole demo, every fault
// on a short schedule, against the shared broker.
func TestDemoAllFaultsLoseNoConfirmedMessage(t *testing.T) {
	b := broker.Shared(t)
	out := newDemoWatchWriter("")
	cfg := demoConfig{duration: 12 * time.Second, rate: 200, faults: allDemoFaults}
	res := runDemoBounded(t, context.Background(), b, cfg, out)
	writeDemoReport(out, res)
	t.Logf("demo output:\n%s", out.String())

	if res.err != nil {
		t.Fatalf("run failed: %v", res.err)
	}
	if code := res.exitCode(); code != demoExitOK {
		t.Errorf("exit code %d, want %d", code, demoExitOK)
	}
	tot := res.totals
	if tot.Lost != 0 || !tot.Drained {
		t.Errorf("%d confirmed messages lost (drained %v): %v", tot.Lost, tot.Drained, tot.LostIDs)
	}
	if tot.Confirmed < 1000 || tot.Received < tot.Confirmed {
		t.Errorf("confirmed %d, received %d: want at least 1000 confirmed, all received", tot.Confirmed, tot.Received)
	}
	if tot.Unsettled != 0 {
		t.Errorf("%d messages never settled", tot.Unsettled)
	}
	if len(res.faults) != len(allDemoFaults) {
		t.Fatalf("%d fault records, want %d", len(res.faults), len(allDemoFaults))
	}
	wantBy := map[demoFault][]conn.EventKind{
		demoFaultClose:     {conn.EventConnectionLost},
		demoFaultPartition: {conn.EventDeadPeer},
		demoFaultAlarm:     {conn.EventBlocked},
		demoFaultStop:      {conn.EventConnectionLost},
	}
	for _, r := range res.faults {
		pub := r.Sides[demoPublisher]
		if r.Err != nil {
			t.Errorf("%v not injected: %v", r.Kind, r.Err)
			continue
		}
		if !demoContainsKind(wantBy[r.Kind], pub.DetectedBy) || pub.DetectedAt.IsZero() {
			t.Errorf("%v: publisher detected it by %v at %v, want %v", r.Kind, pub.DetectedBy, pub.DetectedAt, wantBy[r.Kind])
		}
		if _, ok := pub.outage(); !ok {
			t.Errorf("%v: publisher outage not measured: %+v", r.Kind, pub)
		}
	}
	if !strings.Contains(out.String(), "RESULT     0 confirmed messages lost") {
		t.Error("the report does not state 0 confirmed messages lost")
	}
	checkBrokerClean(t, b)
}

// TestDemoInterruptedDuringStopApp cancels the run (Ctrl-C) once stop_app
// has taken the application down: the demo must start it again, close
// cleanly and exit 130, and the broker must accept connections afterwards.
func TestDemoInterruptedDuringStopApp(t *testing.T) {
	b := broker.Shared(t)
	// stop_app is the only fault, so the first connection lost, on either
	// side, means the application is down. Which side reports it first, and
	// whether as the broker's 320 or as a reset (the broker's close racing a
	// write), is scheduling.
	out := newDemoWatchWriter("connection lost: ")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-out.seen:
			cancel()
		case <-ctx.Done():
		}
	}()
	cfg := demoConfig{duration: 30 * time.Second, rate: 100, faults: []demoFault{demoFaultStop}}
	res := runDemoBounded(t, ctx, b, cfg, out)
	writeDemoReport(out, res)
	t.Logf("demo output:\n%s", out.String())

	if res.err != nil {
		t.Fatalf("run failed: %v", res.err)
	}
	if !res.interrupted {
		t.Error("the run does not report the interruption")
	}
	if code := res.exitCode(); code != demoExitInterrupted {
		t.Errorf("exit code %d, want %d", code, demoExitInterrupted)
	}
	if res.totals.Lost != 0 {
		t.Errorf("%d confirmed messages lost: %v", res.totals.Lost, res.totals.LostIDs)
	}
	if res.totals.Elapsed >= cfg.duration {
		t.Errorf("publishing ran %v: the interrupt did not cut the %v run short", res.totals.Elapsed, cfg.duration)
	}
	checkBrokerClean(t, b)
}

func demoContainsKind(kinds []conn.EventKind, k conn.EventKind) bool {
	for _, want := range kinds {
		if want == k {
			return true
		}
	}
	return false
}

// checkBrokerClean fails the test if the demo left the broker with an alarm,
// without its application, or with connections of its own.
func checkBrokerClean(t *testing.T, b *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), demoBrokerCheckTimeout)
	defer cancel()
	c, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatalf("broker does not accept connections after the demo: %v", err)
	}
	defer c.Close()
	alarms, err := b.Faults.Eval(ctx, "rabbit_alarm:get_alarms().")
	if err != nil {
		t.Fatal(err)
	}
	if alarms != "[]" {
		t.Errorf("broker alarms after the demo: %s", alarms)
	}
	conns, err := b.Faults.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if strings.HasPrefix(c.Name, "warren-demo") || strings.HasPrefix(c.User, "warren-demo") {
			t.Errorf("connection left on the broker: %+v", c)
		}
	}
}
