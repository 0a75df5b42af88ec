package consumer_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// Consumer-under-kills parameters. The handler's pace (about 1,000 messages
// a second with 4 handlers of 4 ms) makes the backlog last long enough for
// about twenty kills; the deadline is generous for a shared 2-core machine.
const (
	backlog       = 10000
	killInterval  = 500 * time.Millisecond
	handlerPause  = 4 * time.Millisecond
	killsDeadline = 2 * time.Minute
	minKills      = 10
)

// TestConsumerUnderKills: every message of a 10,000-message backlog is
// handled at least once while the consumer's connection is killed from the
// broker's side every 500 ms. Unacknowledged deliveries of each killed
// connection come back with Redelivered set; the test reports how many.
func TestConsumerUnderKills(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	k, url := newKiller(t, b, user, pass)
	adm := newAdmin(t, b)
	queue := uniqueName(t, "q")
	adm.queue(queue, nil)
	bodies := make([]string, backlog)
	for i := range bodies {
		bodies[i] = strconv.Itoa(i)
	}
	adm.publish("", queue, bodies...)

	var (
		mu          sync.Mutex
		seen        = make([]int, backlog)
		unique      int
		handled     int
		redelivered int
		allSeen     = make(chan struct{})
	)
	s, _ := start(t, conn.Options{URLs: []string{url}})
	consume(t, s, conn.NamedQueue(queue), func(_ context.Context, d amqp.Delivery) error {
		i, err := strconv.Atoi(d.MessageId)
		if err != nil || i < 0 || i >= backlog {
			t.Errorf("unexpected message id %q", d.MessageId)
			return nil
		}
		time.Sleep(handlerPause) // the work
		mu.Lock()
		defer mu.Unlock()
		handled++
		if d.Redelivered {
			redelivered++
		}
		if seen[i]++; seen[i] == 1 {
			if unique++; unique == backlog {
				close(allSeen)
			}
		}
		return nil
	}, conn.ConsumerOptions{Name: "survivor", Concurrency: 4})

	begin := time.Now()
	var killErrs atomic.Int64
	var killTimes []time.Time // written by the killer goroutine, read after killerDone
	stopKilling := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		// A fixed cadence: the request's own latency does not stretch it.
		next := time.NewTimer(killInterval)
		defer next.Stop()
		for tick := 2; ; tick++ {
			select {
			case <-stopKilling:
				return
			case <-next.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), killRequestTimeout)
			if err := k.kill(ctx); err != nil {
				killErrs.Add(1)
			} else {
				killTimes = append(killTimes, time.Now())
			}
			cancel()
			next.Reset(time.Until(begin.Add(time.Duration(tick) * killInterval)))
		}
	}()

	deadline := time.NewTimer(killsDeadline)
	defer deadline.Stop()
	select {
	case <-allSeen:
	case <-deadline.C:
	}
	close(stopKilling)
	<-killerDone
	elapsed := time.Since(begin)

	mu.Lock()
	defer mu.Unlock()
	st := s.Stats()
	n := len(killTimes)
	// The achieved interval, from the first kill to the last.
	interval := time.Duration(0)
	if n > 1 {
		interval = killTimes[n-1].Sub(killTimes[0]) / time.Duration(n-1)
	}
	lostInterval := time.Duration(0)
	if st.ConnectionsLost > 0 {
		lostInterval = elapsed / time.Duration(st.ConnectionsLost)
	}
	t.Logf("kill path: %s", k.how)
	t.Logf("%d messages, %d handled at least once, %d handler calls (%d duplicates), %d with Redelivered set",
		backlog, unique, handled, handled-unique, redelivered)
	t.Logf("%d kills (%d failed requests) over %v: one every %v; %d connections lost (one every %v of the run), %d reconnects",
		n, killErrs.Load(), elapsed.Round(time.Millisecond), interval.Round(time.Millisecond),
		st.ConnectionsLost, lostInterval.Round(time.Millisecond), st.Reconnects)
	t.Logf("stats: delivered %d, handler errors %d, panics %d", st.Delivered, st.HandlerErrors, st.HandlerPanics)

	if unique != backlog {
		missing := []int{}
		for i, c := range seen {
			if c == 0 && len(missing) < 10 {
				missing = append(missing, i)
			}
		}
		t.Fatalf("only %d of %d messages handled within %v; first missing: %v", unique, backlog, killsDeadline, missing)
	}
	if st.ConnectionsLost < minKills {
		t.Errorf("only %d connections were killed under the consumer, want at least %d", st.ConnectionsLost, minKills)
	}
	if redelivered == 0 {
		t.Errorf("no delivery came back with Redelivered set after %d kills", st.ConnectionsLost)
	}
	if st.Delivered != uint64(handled) {
		t.Errorf("Stats.Delivered = %d, want %d handler calls", st.Delivered, handled)
	}
}
