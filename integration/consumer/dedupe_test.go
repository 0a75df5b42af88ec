package consumer_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// Dedupe-under-kills parameters: a handler slow enough that kills land
// while acks are in flight.
const (
	dedupeMessages = 2000
	dedupeKills    = 8
	dedupePause    = 2 * time.Millisecond
)

// TestDedupeUnderKills: 2,000 messages consumed while the connection is
// killed 8 times, twice: without Dedupe, the broker's redeliveries of
// messages whose ack was lost are handled again (duplicates, reported);
// with Dedupe (and Concurrency 1, so that a redelivery never overlaps the
// first call) no message is handled twice, and none is lost.
func TestDedupeUnderKills(t *testing.T) {
	for _, on := range []bool{false, true} {
		name := "without Dedupe"
		if on {
			name = "with Dedupe"
		}
		t.Run(name, func(t *testing.T) {
			opts := conn.ConsumerOptions{}
			if on {
				opts.Dedupe = &conn.DedupeOptions{}
			}
			dups, redelivered := dedupeRun(t, opts)
			t.Logf("%s: %d messages, %d handled twice or more, %d handler calls with Redelivered set",
				name, dedupeMessages, dups, redelivered)
			if on && dups != 0 {
				t.Errorf("%d messages handled more than once with Dedupe, want 0", dups)
			}
		})
	}
}

// dedupeRun consumes dedupeMessages under kills with opts and returns how
// many messages were handled more than once, and how many handler calls
// had Redelivered set.
func dedupeRun(t *testing.T, opts conn.ConsumerOptions) (dups, redelivered int) {
	k, url, adm, queue := killSetup(t)
	adm.deleteRetryQueues(queue, conn.DefaultRetryDelays()...)
	adm.queue(queue, nil)
	adm.publish("", queue, numbered(dedupeMessages)...)

	var mu sync.Mutex
	seen := make([]int, dedupeMessages)
	unique := 0
	all := make(chan struct{})
	s, _ := start(t, conn.Options{URLs: []string{url}})
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		i, _ := strconv.Atoi(d.MessageId)
		time.Sleep(dedupePause) // the work
		mu.Lock()
		defer mu.Unlock()
		if d.Redelivered {
			redelivered++
		}
		if seen[i]++; seen[i] == 1 {
			if unique++; unique == dedupeMessages {
				close(all)
			}
		}
		return nil
	}, opts)
	waitReady(t, s)
	killRepeatedly(t, k, dedupeKills, func() time.Duration { return 300 * time.Millisecond }, all, nil)
	select {
	case <-all:
	case <-time.After(killsDeadline):
		t.Fatalf("%d of %d messages handled within %v", unique, dedupeMessages, killsDeadline)
	}
	// Redeliveries still queued are handled (or suppressed) before counting.
	waitEmpty(t, adm, queue)
	mu.Lock()
	defer mu.Unlock()
	for _, n := range seen {
		if n > 1 {
			dups++
		}
	}
	return dups, redelivered
}

// waitEmpty waits until queue has no ready message (test-only polling of
// queue.declare passive, which has no wait).
func waitEmpty(t *testing.T, adm *admin, queue string) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for adm.messages(queue) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds messages after %v", queue, defaultTestTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
