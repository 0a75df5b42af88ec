package consumer_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// Randomized outcome test parameters: enough messages and kills for every
// outcome to meet a kill, few enough for a shared 2-core machine.
const (
	randomMessages = 300
	randomKills    = 6
	randomDeadline = 3 * time.Minute
	// A handler call past this index always acks, so that every message
	// terminates however its script began.
	randomScriptLen = 6
	// randomPause is each handler call's work: it spreads the run over the
	// kills.
	randomPause = 10 * time.Millisecond
)

// action is what a scripted handler call does.
type action int

const (
	actAck action = iota
	actRequeue
	actReject
	actRetryAfter
	actFail // a plain error: the default outcome, RetryBackoff
	actPanic
	actSelfAck
	actSelfRequeue
	actSelfReject
	actionCount
)

var actionNames = [...]string{"ack", "requeue", "reject", "retry-after", "fail", "panic", "self-ack", "self-requeue", "self-reject"}

// script returns what call k (from 0) of message i does under seed.
func script(seed int64, i, k int) action {
	if k >= randomScriptLen {
		return actAck
	}
	return action(rand.New(rand.NewSource(seed ^ int64(i)*7919 ^ int64(k)*104729)).Intn(int(actionCount)))
}

// TestOutcomesRandomizedUnderKills: 300 messages, each handled by a script
// of outcomes drawn from a seed (ack, requeue, reject, retry after a delay,
// a plain error, a panic, and the handler's own ack, requeue or reject),
// while the consumer's connection is killed 6 times at random moments.
// Invariants: each delivery is settled exactly once (a second settlement of
// a tag would close the consumer's channel with 406, which never happens),
// and no message is lost: every message ends acknowledged by a handler or in
// the dead queue (rejected there through the queue's dead-letter exchange,
// or moved there after Retry.MaxAttempts), including those that went
// through the retry queues. WARREN_SEED=N replays a run.
func TestOutcomesRandomizedUnderKills(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("WARREN_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("WARREN_SEED: %v", err)
		}
	}
	t.Logf("seed %d (WARREN_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	k, url, adm, queue := killSetup(t)
	dead := queue + ".dead"
	delays := []time.Duration{200 * time.Millisecond, 500 * time.Millisecond}
	adm.deleteRetryQueues(queue, delays...)
	adm.durableQueue(dead, nil)
	args, err := conn.QueueArgs{DeadLetter: conn.DeadLetterToQueue(dead)}.Table()
	if err != nil {
		t.Fatal(err)
	}
	adm.queue(queue, args)

	var (
		mu       sync.Mutex
		callsOf  = make([]int, randomMessages)
		acked    = make([]bool, randomMessages)
		deadIDs  = make([]bool, randomMessages)
		done     = 0
		used     = make([]int, actionCount)
		finished = make(chan struct{})
	)
	// account marks message i as ended; caller holds mu.
	account := func(i int, in []bool) {
		if !acked[i] && !deadIDs[i] {
			if done++; done == randomMessages {
				close(finished)
			}
		}
		in[i] = true
	}
	deadMsgs, err := adm.ch.Consume(dead, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", dead, err)
	}
	go func() {
		for d := range deadMsgs {
			i, _ := strconv.Atoi(d.MessageId)
			mu.Lock()
			account(i, deadIDs)
			mu.Unlock()
		}
	}()

	concurrency := 1 + rng.Intn(3)
	// Scripted panics are expected: their logged stacks would bury the
	// test's output.
	s, rec := start(t, conn.Options{URLs: []string{url}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		time.Sleep(randomPause)
		i, err := strconv.Atoi(d.MessageId)
		if err != nil {
			t.Errorf("unexpected message %q", d.MessageId)
			return nil
		}
		mu.Lock()
		a := script(seed, i, callsOf[i])
		callsOf[i]++
		used[a]++
		if a == actAck || a == actSelfAck {
			// Counted before the ack: a kill may lose the ack, and then the
			// message is redelivered, a duplicate but no loss.
			account(i, acked)
		}
		mu.Unlock()
		switch a {
		case actAck:
			return nil
		case actRequeue:
			return conn.Requeue(errFailed)
		case actReject:
			return conn.Reject(errFailed)
		case actRetryAfter:
			return conn.RetryAfter(300*time.Millisecond, errFailed)
		case actPanic:
			panic("scripted panic")
		case actSelfAck:
			_ = d.Ack(false)
			return errFailed // ignored: settled already
		case actSelfRequeue:
			_ = d.Nack(false, true)
			return nil
		case actSelfReject:
			_ = d.Reject(false)
			return nil
		}
		return errFailed
	}, conn.ConsumerOptions{Concurrency: concurrency, Retry: conn.RetryPolicy{Delays: delays, MaxAttempts: 4}})
	waitReady(t, s)
	t.Logf("concurrency %d", concurrency)

	adm.publish("", queue, numbered(randomMessages)...)
	begin := time.Now()
	killRepeatedly(t, k, randomKills, func() time.Duration { return time.Duration(100+rng.Intn(600)) * time.Millisecond },
		finished, func() { checkNoDoubleSettle(t, rec) }) // each step's check: a double settlement shows as a 406
	deadline := time.NewTimer(randomDeadline)
	defer deadline.Stop()
	select {
	case <-finished:
	case <-deadline.C:
		mu.Lock()
		var missing []int
		for i := range acked {
			if !acked[i] && !deadIDs[i] && len(missing) < 10 {
				missing = append(missing, i)
			}
		}
		mu.Unlock()
		t.Fatalf("seed %d: %d of %d messages ended within %v; first missing %v", seed, done, randomMessages, randomDeadline, missing)
	}
	checkNoDoubleSettle(t, rec)

	mu.Lock()
	defer mu.Unlock()
	var calls, inDead int
	for i := range callsOf {
		calls += callsOf[i]
		if deadIDs[i] {
			inDead++
		}
	}
	st := s.Stats()
	t.Logf("seed %d: %d messages ended in %v (%d acked, %d in the dead queue) after %d handler calls; %d connections lost",
		seed, randomMessages, time.Since(begin).Round(time.Millisecond), randomMessages-inDead, inDead, calls, st.ConnectionsLost)
	for a, n := range used {
		t.Logf("  %-12s %d", actionNames[a], n)
	}
}

// checkNoDoubleSettle fails the test if a consumer's channel was closed by
// the broker: a delivery settled twice is refused with 406 that way.
func checkNoDoubleSettle(t *testing.T, rec *recorder) {
	t.Helper()
	for _, e := range rec.Snapshot() {
		if e.Kind == conn.EventConsumerChannelClosed {
			t.Fatalf("the consumer's channel was closed (a double settlement?): %v", e.Err)
		}
	}
}
