package detection_test

import (
	"context"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 3 * time.Minute
	// loadQueueLength caps the load queue (x-max-length, oldest dropped) so
	// that publishing at full speed for minutes keeps the broker's memory
	// bounded; a dropped message is still confirmed.
	loadQueueLength = 20000
)

// load publishes with confirms on a Publisher of s, either paced at rate
// messages a second or, with rate 0, as fast as the broker takes them from
// workers goroutines each keeping a window of confirms in flight.
type load struct {
	t      *testing.T
	p      *conn.Publisher
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	mu     sync.Mutex
	errs   int // publishes that failed for a reason other than the stop
}

func startLoad(t *testing.T, s *conn.Supervisor, queue string, rate, workers int, body []byte) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{t: t, cancel: cancel}
	t.Cleanup(l.stop)
	pctx, pcancel := context.WithTimeout(ctx, defaultTestTimeout)
	defer pcancel()
	p, err := s.NewPublisher(pctx, conn.PublisherOptions{Name: "load-" + queue})
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	l.p = p
	msg := amqp.Publishing{Body: body}
	if rate > 0 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				// The confirmation settles on its own; a partition makes
				// PublishAsync wait for room, bounded by ctx.
				if _, err := p.PublishAsync(ctx, "", queue, msg); err != nil && ctx.Err() == nil {
					l.failed()
				}
			}
		}()
		return l
	}
	const window = 64
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			pending := make([]*conn.Confirmation, 0, window)
			for ctx.Err() == nil {
				c, err := p.PublishAsync(ctx, "", queue, msg)
				if err != nil {
					if ctx.Err() == nil {
						l.failed()
					}
					continue
				}
				if pending = append(pending, c); len(pending) < window {
					continue
				}
				for _, c := range pending {
					if err := c.Wait(ctx); err != nil && ctx.Err() == nil {
						l.failed()
					}
				}
				pending = pending[:0]
			}
		}()
	}
	return l
}

func (l *load) failed() {
	l.mu.Lock()
	l.errs++
	l.mu.Unlock()
}

// stop ends the load, waits for its goroutines and closes the publisher,
// which waits for the confirms still owed; idempotent. A message that is never
// confirmed fails the test: the load's publisher must lose nothing, and a test
// that ends during an outage must first wait for the connection to return.
func (l *load) stop() {
	l.once.Do(func() {
		l.cancel()
		l.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		if err := l.p.Close(ctx); err != nil {
			l.t.Errorf("load publisher Close: %v", err)
		}
	})
}

// loadQueue is the capped queue the load publishes to.
func loadQueue(name string) *conn.Queue {
	return &conn.Queue{Name: name, Exclusive: true, Args: amqp.Table{"x-max-length": loadQueueLength}}
}

// declare declares qs on every connection of s.
func declare(t *testing.T, s *conn.Supervisor, qs ...*conn.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	remove, err := s.DeclareTopology(ctx, conn.Topology{Queues: qs})
	if err != nil {
		t.Fatalf("DeclareTopology: %v", err)
	}
	t.Cleanup(remove)
}

// consume subscribes a consumer with a prefetch window whose handler takes
// work per message before it acks.
func consume(t *testing.T, s *conn.Supervisor, q *conn.Queue, prefetch int, work time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	c, err := s.Consume(ctx, q, func(ctx context.Context, _ amqp.Delivery) error {
		if work <= 0 {
			return nil
		}
		tm := time.NewTimer(work)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
		return nil
	}, conn.ConsumerOptions{Prefetch: prefetch})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		_ = c.Close(ctx)
	})
}

// deadPeers returns the EventDeadPeer events recorded so far.
func deadPeers(events []conn.Event) []conn.Event {
	var out []conn.Event
	for _, e := range events {
		if e.Kind == conn.EventDeadPeer {
			out = append(out, e)
		}
	}
	return out
}

// waitReady waits for s to be Ready, bounded by defaultTestTimeout.
func waitReady(s *conn.Supervisor) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	return s.WaitReady(ctx)
}
