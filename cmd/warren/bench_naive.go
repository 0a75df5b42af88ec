package main

import (
	"context"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// naiveThroughput dials like the naive client; with nothing failing it is
// plain amqp091-go.
func naiveThroughput(ctx context.Context, cfg workerConfig) (*workerResult, error) {
	return rawThroughput(ctx, cfg)
}

// naiveClient is the reconnect loop of amqp091-go's example client
// (example_client_test.go, handleReconnect/handleReInit): wait on
// NotifyClose, redial at once, and after a failed dial wait a fixed delay
// (the example's reconnectDelay is 5 s; the bench uses cfg.NaiveDelay, 1 s by
// default, the stronger baseline); on every connection reopen the
// confirm-mode channel and the consumer. A failed set-up closes the
// connection and counts as a failed dial (the example retries it on the same
// connection after 2 s).
type naiveClient struct {
	cfg  workerConfig
	live *benchLiveness
	stop chan struct{}
	done chan struct{} // run has exited
	once sync.Once

	mu      sync.Mutex
	pub     *amqp.Channel     // nil while down
	gen     uint64            // counts connections set up
	changed chan struct{}     // closed and replaced when pub changes
	ackers  []<-chan struct{} // one per connection's consumer; one per reconnect
}

// connectNaive starts the naive client and waits for its first connection.
func connectNaive(ctx context.Context, cfg workerConfig, live *benchLiveness) (benchClient, error) {
	nc := &naiveClient{
		cfg:     cfg,
		live:    live,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	go nc.run()
	if _, _, err := nc.channel(ctx, 0); err != nil {
		_ = closeBenchClient(nc)
		return nil, err
	}
	return nc, nil
}

// run is the reconnect loop.
func (nc *naiveClient) run() {
	defer close(nc.done)
	for {
		conn, closes, err := nc.dialOnce()
		if err != nil {
			t := time.NewTimer(nc.cfg.NaiveDelay)
			select {
			case <-nc.stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		nc.live.up(time.Now())
		select {
		case <-nc.stop:
			nc.install(nil, nil)
			_ = conn.Close()
			return
		case err := <-closes:
			at := time.Now()
			nc.install(nil, nil)
			var reason error
			if err != nil {
				reason = err
			}
			nc.live.lost(at, reason, false)
		}
	}
}

// dialOnce connects and sets the channels up. closes is registered before
// the set-up, so a connection killed during it is noticed.
func (nc *naiveClient) dialOnce() (*amqp.Connection, chan *amqp.Error, error) {
	conn, err := amqp.DialConfig(nc.cfg.URL, benchAMQPConfig(nc.cfg))
	if err != nil {
		return nil, nil, err
	}
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	pub, acker, err := benchServiceChannels(conn, nc.cfg)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	nc.install(pub, acker)
	return conn, closes, nil
}

func (nc *naiveClient) install(pub *amqp.Channel, acker <-chan struct{}) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	nc.pub = pub
	if pub != nil {
		nc.gen++
		nc.ackers = append(nc.ackers, acker)
	}
	close(nc.changed)
	nc.changed = make(chan struct{})
}

// channel implements benchConfirmSource.
func (nc *naiveClient) channel(ctx context.Context, after uint64) (*amqp.Channel, uint64, error) {
	for {
		nc.mu.Lock()
		pub, gen, changed := nc.pub, nc.gen, nc.changed
		nc.mu.Unlock()
		if pub != nil && gen > after {
			return pub, gen, nil
		}
		select {
		case <-changed:
		case <-nc.done:
			return nil, 0, amqp.ErrClosed
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

func (nc *naiveClient) publishAll(ctx context.Context, cfg workerConfig) (benchBitset, error) {
	return benchPublishWithRetry(ctx, nc, cfg)
}

func (nc *naiveClient) close(ctx context.Context) error {
	nc.once.Do(func() { close(nc.stop) })
	if err := benchWaitAll(ctx, nc.done); err != nil {
		return err
	}
	nc.mu.Lock()
	ackers := nc.ackers
	nc.mu.Unlock()
	return benchWaitAll(ctx, ackers...)
}
