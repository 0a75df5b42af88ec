package consumer_test

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// poisonFigures is what one poison-message run measured.
type poisonFigures struct {
	goodHandled  int
	goodTook     time.Duration // until every good message was handled
	poisonCalls  int64         // within the watch, from the poison's first call
	where        map[string]int
	firstPoison  time.Time
	watch        time.Duration
	policyString string
}

// poisonRun publishes good messages with one that always fails in their
// middle, consumes them with opts, and watches the poison message for
// watch from its first handler call.
func poisonRun(t *testing.T, good int, watch time.Duration, opts conn.ConsumerOptions) poisonFigures {
	b := broker.Shared(t)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	delays := conn.DefaultRetryDelays()
	adm.deleteRetryQueues(queue, delays...)
	adm.queue(queue, nil)
	bodies := make([]string, 0, good+1)
	for i := 0; i < good; i++ {
		if i == good/2 {
			bodies = append(bodies, "poison")
		}
		bodies = append(bodies, "g"+strconv.Itoa(i))
	}
	adm.publish("", queue, bodies...)

	var poisonCalls, goodCalls atomic.Int64
	var firstPoison atomic.Pointer[time.Time]
	allGood := make(chan time.Time, 1)
	seen := make([]atomic.Bool, good)
	var unique atomic.Int64
	s, _ := start(t, conn.Options{URLs: []string{b.URL}})
	begin := time.Now()
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		if string(d.Body) == "poison" {
			now := time.Now()
			firstPoison.CompareAndSwap(nil, &now)
			if f := firstPoison.Load(); now.Sub(*f) <= watch {
				poisonCalls.Add(1)
			}
			return errFailed
		}
		goodCalls.Add(1)
		i, _ := strconv.Atoi(string(d.Body[1:]))
		if !seen[i].Swap(true) && unique.Add(1) == int64(good) {
			allGood <- time.Now()
		}
		return nil
	}, opts)

	f := poisonFigures{watch: watch, policyString: opts.OnError.String(), where: map[string]int{}}
	select {
	case at := <-allGood:
		f.goodTook = at.Sub(begin)
	case <-time.After(watch + 2*defaultTestTimeout):
		t.Fatalf("%d of %d good messages handled", unique.Load(), good)
	}
	first := firstPoison.Load()
	if first == nil {
		t.Fatal("the poison message was never handled")
	}
	f.firstPoison = *first
	time.Sleep(time.Until(first.Add(watch))) // the measurement window itself
	f.goodHandled = int(unique.Load())
	f.poisonCalls = poisonCalls.Load()
	for _, q := range append([]string{queue, queue + ".dead"}, retryNames(queue, delays)...) {
		if opts.OnError != conn.RetryBackoff && q != queue {
			continue
		}
		if n := adm.messages(q); n > 0 {
			f.where[q[len(queue):]] = n
		}
	}
	t.Logf("%s: %d good messages all handled in %v (%d calls); poison message: %d handler calls in %v; then in %v (suffixes of the queue's name; \"\" is the queue itself)",
		f.policyString, f.goodHandled, f.goodTook.Round(time.Millisecond), goodCalls.Load(), f.poisonCalls, watch, f.where)
	return f
}

func retryNames(queue string, delays []time.Duration) []string {
	var out []string
	for _, d := range delays {
		out = append(out, retryQueueName(queue, d))
	}
	return out
}

// TestPoisonMessageDoesNotLoopHot: one message that always fails, among
// 2,000 good ones, under the default failure outcome: the good ones are all
// handled, and the poison message is handled 3 times in 13 s (at 0, 1 s and
// 11 s: the default delays), then waits in QUEUE.retry.1m0s, not in memory.
// WARREN_POISON_60S=1 runs the full measurement instead (10,000 good
// messages, 60 s, before and after; see TestPoisonFigures).
func TestPoisonMessageDoesNotLoopHot(t *testing.T) {
	f := poisonRun(t, 2000, 13*time.Second, conn.ConsumerOptions{})
	if f.goodHandled != 2000 {
		t.Errorf("%d good messages handled, want 2000", f.goodHandled)
	}
	if f.poisonCalls != 3 {
		t.Errorf("%d handler calls for the poison message in 13 s, want 3", f.poisonCalls)
	}
	if f.where[".retry.1m0s"] != 1 || len(f.where) != 1 {
		t.Errorf("the poison message is in %v, want only in .retry.1m0s", f.where)
	}
}

// TestPoisonFigures is the opt-in 60 s measurement of the issue: one poison
// message among 10,000 good ones, with the old default (RequeueAlways) and
// the new one (RetryBackoff). Run it with WARREN_POISON_60S=1.
func TestPoisonFigures(t *testing.T) {
	if os.Getenv("WARREN_POISON_60S") == "" {
		t.Skip("set WARREN_POISON_60S=1 to measure (about 2.5 minutes)")
	}
	for _, p := range []conn.RequeuePolicy{conn.RequeueAlways, conn.RetryBackoff} {
		t.Run(p.String(), func(t *testing.T) {
			f := poisonRun(t, 10000, time.Minute, conn.ConsumerOptions{OnError: p})
			if f.goodHandled != 10000 {
				t.Errorf("%d good messages handled, want 10000", f.goodHandled)
			}
		})
	}
}
