package consumer_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// call is one handler call as a test saw it.
type call struct {
	at          time.Time
	id          string
	retries     any // the RetryHeader, nil on a first delivery
	redelivered bool
}

// calls records handler calls and wakes waiters on each.
type calls struct {
	mu   sync.Mutex
	all  []call
	kick chan struct{}
}

func newCalls() *calls { return &calls{kick: make(chan struct{}, 1)} }

func (c *calls) add(d amqp.Delivery) int {
	c.mu.Lock()
	c.all = append(c.all, call{at: time.Now(), id: d.MessageId, retries: d.Headers["x-warren-retries"], redelivered: d.Redelivered})
	n := len(c.all)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return n
}

// failing is a handler that records its call and fails with a plain error.
func (c *calls) failing(_ context.Context, d amqp.Delivery) error {
	c.add(d)
	return errFailed
}

func (c *calls) snapshot() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.all...)
}

// waitFor waits until n calls were recorded, failing the test after d.
func (c *calls) waitFor(t testing.TB, n int, d time.Duration) []call {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if got := c.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-c.kick:
		case <-timer.C:
			t.Fatalf("%d handler calls within %v, want %d", len(c.snapshot()), d, n)
		}
	}
}

// get takes one message from queue with basic.get and acks it, waiting for
// one to arrive (bounded by d); ok is false if none came.
func (a *admin) get(queue string, d time.Duration) (amqp.Delivery, bool) {
	a.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond) // basic.get has no wait: test-only polling
	defer poll.Stop()
	for {
		m, ok, err := a.ch.Get(queue, true)
		if err != nil {
			a.t.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			return m, true
		}
		select {
		case <-poll.C:
		case <-deadline.C:
			return amqp.Delivery{}, false
		}
	}
}

// durableQueue declares a durable queue (retry and dead queues are durable)
// and deletes it at cleanup.
func (a *admin) durableQueue(name string, args amqp.Table) {
	a.t.Helper()
	if _, err := a.ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		a.t.Fatalf("declare queue %s: %v", name, err)
	}
	a.t.Cleanup(func() { a.deleteQueue(name) })
}

// deleteRetryQueues deletes the queues a consumer declared for its retries,
// at cleanup.
func (a *admin) deleteRetryQueues(queue string, delays ...time.Duration) {
	a.t.Cleanup(func() {
		for _, d := range delays {
			a.deleteQueue(retryQueueName(queue, d))
		}
		a.deleteQueue(queue + ".dead")
	})
}

// numbered returns the bodies "0" to "n-1", which admin.publish also uses
// as MessageIds.
func numbered(n int) []string {
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = strconv.Itoa(i)
	}
	return bodies
}

// killRepeatedly kills k's connections n times, each after pause() or as
// soon as stop is closed, and runs step after each kill.
func killRepeatedly(t *testing.T, k *killer, n int, pause func() time.Duration, stop <-chan struct{}, step func()) {
	t.Helper()
	for i := 0; i < n; i++ {
		timer := time.NewTimer(pause())
		select {
		case <-timer.C:
		case <-stop:
			timer.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), killRequestTimeout)
		if err := k.kill(ctx); err != nil {
			t.Logf("kill %d: %v", i+1, err)
		}
		cancel()
		if step != nil {
			step()
		}
	}
}

// killSetup returns, on the shared broker, a killer of a fresh test user's
// connections, the URL that user's supervisor must dial, an admin, and a
// fresh queue name.
func killSetup(t *testing.T) (k *killer, url string, adm *admin, queue string) {
	t.Helper()
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url = newKiller(t, b, user, pass)
	return k, url, newAdmin(t, b), uniqueName(t, "q")
}
