package main

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// benchRecoveryConfig is amqp091-go's built-in recovery with its defaults except
// the retry count, which is made unlimited (its default gives up after 5
// attempts): every attempt waits DefaultRetryInterval (5 s) plus up to 500 ms
// of jitter.
func benchRecoveryConfig(cfg workerConfig) amqp.Config {
	c := benchAMQPConfig(cfg)
	c.Recovery = &amqp.Recovery{ReconnectionConfig: &amqp.ReconnectionConfig{
		MaxRetryCount: math.MaxInt,
		RetryInterval: amqp.DefaultRetryInterval,
	}}
	return c
}

// recoveryThroughput is rawThroughput on a connection with recovery on,
// which also tracks topology and watches every channel.
func recoveryThroughput(ctx context.Context, cfg workerConfig) (*workerResult, error) {
	c, err := amqp.DialConfig(cfg.URL, benchRecoveryConfig(cfg))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return benchThroughputOn(ctx, c, cfg)
}

// recoveryClient is one amqp091-go connection with Config.Recovery: the
// library redials, reopens the channels (confirm mode included) and
// re-subscribes the consumer itself. A loss is taken from NotifyClose, which
// fires first; the connection is publishable again when NotifyStateChange
// reports StateOpen after StateReconnecting, which amqp091-go sets only once
// channels and consumers are recovered.
type recoveryClient struct {
	conn    *amqp.Connection
	pub     *amqp.Channel
	acker   <-chan struct{}
	watched chan struct{} // both watchers have exited
	live    *benchLiveness

	mu      sync.Mutex
	open    bool
	gen     uint64        // counts openings of the connection
	changed chan struct{} // closed and replaced when open changes
}

// connectRecovery dials with Config.Recovery and watches the connection's
// closes and state changes.
func connectRecovery(ctx context.Context, cfg workerConfig, live *benchLiveness) (benchClient, error) {
	c, err := amqp.DialConfig(cfg.URL, benchRecoveryConfig(cfg))
	if err != nil {
		return nil, err
	}
	closes := c.NotifyClose(make(chan *amqp.Error, 1))
	states := make(chan *amqp.StateChanged, 16)
	c.NotifyStateChange(states)
	pub, acker, err := benchServiceChannels(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	rc := &recoveryClient{
		conn: c, pub: pub, acker: acker, live: live,
		watched: make(chan struct{}),
		open:    true, gen: 1,
		changed: make(chan struct{}),
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for err := range closes {
			if err != nil {
				rc.setOpen(false)
				live.lost(time.Now(), err, false)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for sc := range states {
			switch {
			case sc.To == amqp.StateOpen && sc.From == amqp.StateReconnecting:
				rc.setOpen(true)
				live.up(time.Now())
			case sc.To != amqp.StateOpen:
				rc.setOpen(false)
			}
		}
	}()
	go func() { wg.Wait(); close(rc.watched) }()
	return rc, nil
}

func (rc *recoveryClient) setOpen(open bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.open == open {
		return
	}
	rc.open = open
	if open {
		rc.gen++
	}
	close(rc.changed)
	rc.changed = make(chan struct{})
}

// channel implements benchConfirmSource. The channel object is the same across
// recoveries; an incarnation is one opening of the connection.
func (rc *recoveryClient) channel(ctx context.Context, after uint64) (*amqp.Channel, uint64, error) {
	for {
		rc.mu.Lock()
		open, gen, changed := rc.open, rc.gen, rc.changed
		rc.mu.Unlock()
		if open && gen > after {
			return rc.pub, gen, nil
		}
		select {
		case <-changed:
		case <-rc.watched:
			return nil, 0, amqp.ErrClosed
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

func (rc *recoveryClient) publishAll(ctx context.Context, cfg workerConfig) (benchBitset, error) {
	return benchPublishWithRetry(ctx, rc, cfg)
}

func (rc *recoveryClient) close(ctx context.Context) error {
	// Close also cancels a recovery in progress.
	done := make(chan error, 1)
	go func() { done <- rc.conn.Close() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if errors.Is(err, amqp.ErrClosed) {
		err = nil
	}
	return errors.Join(err, benchWaitAll(ctx, rc.acker, rc.watched))
}
