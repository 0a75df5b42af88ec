package main

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

const (
	// benchTestTimeout bounds one in-process worker run against the broker.
	benchTestTimeout = time.Minute
	// benchFaultTimeout bounds a fault-tool call (rabbitmqctl boots an Erlang VM).
	benchFaultTimeout = time.Minute
)

func TestWorkerFlagsRoundTrip(t *testing.T) {
	want := workerConfig{
		Contender: contRecovery, Scenario: scenLoss, URL: "amqp://u:p@127.0.0.1:5672/", Queue: "q", Consume: "q2",
		ConnName: "n", N: 12, Size: 100, Window: 256, Rate: 1000, Heartbeat: time.Second, Duration: 3 * time.Second,
		Deadline: time.Minute, NaiveDelay: time.Second, ResetAfter: 2 * time.Second, Debug: true,
	}
	got, err := parseWorkerFlags(want.args(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	bad := []struct {
		name string
		args []string
	}{
		{"unknown contender", []string{"-contender", "nope", "-url", "amqp://x/", "-queue", "q"}},
		{"no url", []string{"-contender", contRaw, "-queue", "q"}},
		{"no queue", []string{"-contender", contRaw, "-url", "amqp://x/"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseWorkerFlags(tt.args, io.Discard); err == nil {
				t.Errorf("parseWorkerFlags(%q) accepted", tt.args)
			}
		})
	}
}

// runInProcess runs one worker scenario on a goroutine and returns its
// protocol lines as they come, its stop function, and a channel with its
// result.
func runInProcess(t *testing.T, cfg workerConfig) (<-chan benchMsg, func(), <-chan *workerResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Deadline)
	stop, stopNow := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	msgs := make(chan benchMsg, 64)
	go readBenchMsgs(pr, msgs, func(s string) { t.Errorf("worker wrote %q", s) })
	results := make(chan *workerResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pw.Close()
		res, err := runWorker(ctx, stop, cfg, newBenchReporter(pw))
		if err != nil {
			t.Errorf("%s/%s: %v", cfg.Contender, cfg.Scenario, err)
		}
		results <- res
	}()
	t.Cleanup(func() { stopNow(); <-done; cancel() })
	return msgs, stopNow, results
}

func awaitMsg(t *testing.T, msgs <-chan benchMsg, typ string) benchMsg {
	t.Helper()
	timer := time.NewTimer(benchTestTimeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("worker ended before a %q line", typ)
			}
			if m.Type == typ {
				return m
			}
		case <-timer.C:
			t.Fatalf("no %q line within %v", typ, benchTestTimeout)
		}
	}
}

func declare(t *testing.T, b *broker.Broker, names ...string) {
	t.Helper()
	c, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range names {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c, err := amqp.Dial(b.URL)
		if err != nil {
			return
		}
		defer c.Close()
		if ch, err := c.Channel(); err == nil {
			for _, q := range names {
				_, _ = ch.QueueDelete(q, false, false, false)
			}
		}
	})
}

func testWorker(b *broker.Broker, contender, scenario string) workerConfig {
	q := fmt.Sprintf("warren-bench-test-%s-%s", contender, scenario)
	return workerConfig{
		Contender: contender, Scenario: scenario, URL: b.URL, Queue: q, ConnName: q,
		N: 300, Size: 100, Window: 32, Rate: 3000, Heartbeat: 10 * time.Second,
		Duration: 300 * time.Millisecond, Deadline: benchTestTimeout,
		NaiveDelay: 100 * time.Millisecond, ResetAfter: time.Second,
	}
}

// TestContendersThroughputAndLoss runs each contender's throughput, idle and
// loss code against the broker, with small counts and no faults.
func TestContendersThroughputAndLoss(t *testing.T) {
	b := broker.Shared(t)
	for _, c := range benchContenders {
		t.Run(c, func(t *testing.T) {
			tp := testWorker(b, c, scenThroughput)
			declare(t, b, tp.Queue)
			_, _, results := runInProcess(t, tp)
			if r := <-results; r == nil || r.Messages != tp.N || r.PublishNS <= 0 || r.ConsumeNS <= 0 || r.SubscribeNS <= 0 {
				t.Errorf("throughput result %+v", r)
			}

			idle := testWorker(b, c, scenIdle)
			declare(t, b, idle.Queue)
			msgs, _, results := runInProcess(t, idle)
			awaitMsg(t, msgs, wmReady)
			if r := <-results; r == nil || r.WindowNS < int64(idle.Duration) || r.CPUNS < 0 {
				t.Errorf("idle result %+v", r)
			}

			if c == contRaw {
				return // raw does not publish through reconnects
			}
			loss := testWorker(b, c, scenLoss)
			loss.Consume = loss.Queue + "-consumer"
			declare(t, b, loss.Queue, loss.Consume)
			_, _, results = runInProcess(t, loss)
			r := <-results
			if r == nil || r.Confirmed != loss.N {
				t.Fatalf("loss result %+v, want all %d confirmed", r, loss.N)
			}
			set, err := decodeBenchBitset(r.Bitmap, loss.N)
			if err != nil || set.count() != loss.N {
				t.Errorf("bitmap of %d confirmed (%v), want %d", set.count(), err, loss.N)
			}
		})
	}
}

// TestContendersSurviveBrokerKill kills each reconnecting contender's
// connection from the broker side and expects a lost and an up line.
// amqp091-go's recovery waits 5 s before it redials.
func TestContendersSurviveBrokerKill(t *testing.T) {
	b := broker.Shared(t)
	for _, c := range benchReconnecting {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			user, pass := "warren-bench-test-"+c, "pw-"+c
			ctx, cancel := context.WithTimeout(context.Background(), benchFaultTimeout)
			defer cancel()
			admin := benchFaultsAdmin{b.Faults}
			if err := admin.addUser(ctx, user, pass); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), benchFaultTimeout)
				defer cancel()
				_ = admin.deleteUser(ctx, user)
			})
			cfg := testWorker(b, c, scenOutage)
			cfg.URL = b.URLWith(user, pass, "/")
			declare(t, b, cfg.Queue)
			msgs, stop, results := runInProcess(t, cfg)
			awaitMsg(t, msgs, wmReady)
			if err := admin.closeUser(ctx, user); err != nil {
				t.Fatal(err)
			}
			lost := awaitMsg(t, msgs, wmLost)
			up := awaitMsg(t, msgs, wmUp)
			if up.T < lost.T || up.OutageNS <= 0 {
				t.Errorf("lost at %d, up at %d after %v", lost.T, up.T, time.Duration(up.OutageNS))
			}
			stop()
			if r := <-results; r == nil || r.Losses != 1 {
				t.Errorf("outage result %+v, want 1 loss", r)
			}
		})
	}
}
