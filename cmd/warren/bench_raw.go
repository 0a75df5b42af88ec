package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// errBenchNotPublishing is what contenders that do not take part in the loss
// scenario return from publishAll.
var errBenchNotPublishing = errors.New("bench: this contender does not publish through reconnects")

// benchAMQPConfig is the amqp091-go configuration every baseline dials with.
func benchAMQPConfig(cfg workerConfig) amqp.Config {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(cfg.ConnName)
	return amqp.Config{Heartbeat: cfg.Heartbeat, Properties: props}
}

// rawThroughput is plain amqp091-go: one connection, a confirm-mode channel
// whose NotifyPublish listener releases a window of cfg.Window publishes,
// then a consumer with prefetch cfg.Window acknowledging one by one.
func rawThroughput(ctx context.Context, cfg workerConfig) (*workerResult, error) {
	c, err := amqp.DialConfig(cfg.URL, benchAMQPConfig(cfg))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return benchThroughputOn(ctx, c, cfg)
}

// benchThroughputOn runs the throughput scenario on an open amqp091-go connection.
func benchThroughputOn(ctx context.Context, c *amqp.Connection, cfg workerConfig) (*workerResult, error) {
	pubDur, err := benchPublishConfirmed(ctx, c, cfg)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	sub, con, err := benchConsumeN(ctx, c, cfg)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return &workerResult{PublishNS: int64(pubDur), ConsumeNS: int64(con), SubscribeNS: int64(sub), Messages: cfg.N}, nil
}

// benchPublishConfirmed publishes cfg.N messages with at most cfg.Window
// unconfirmed and returns the time from the first publish to the last
// confirm.
func benchPublishConfirmed(ctx context.Context, c *amqp.Connection, cfg workerConfig) (time.Duration, error) {
	ch, err := c.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	// Buffered for the whole window, so amqp091-go never waits on us.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, cfg.Window))
	slots := make(chan struct{}, cfg.Window)
	acked := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := 0; i < cfg.N; i++ {
			select {
			case cf, ok := <-confirms:
				if !ok {
					acked <- errors.New("channel closed before every confirm arrived")
					return
				}
				if !cf.Ack {
					acked <- fmt.Errorf("broker nacked delivery tag %d", cf.DeliveryTag)
					return
				}
				<-slots
			case <-ctx.Done():
				acked <- ctx.Err()
				return
			}
		}
		acked <- nil
	}()
	for i := 0; i < cfg.N; i++ {
		select {
		case slots <- struct{}{}:
		case err := <-acked:
			return 0, err
		}
		if err := ch.PublishWithContext(ctx, "", cfg.Queue, false, false, benchMessage(i, cfg.Size)); err != nil {
			return 0, err
		}
	}
	if err := <-acked; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// benchConsumeN consumes and acknowledges cfg.N messages with prefetch
// cfg.Window. It returns the time from subscribing to the first delivery
// (sub) and from the first delivery to the last (con): the same two spans
// warrenConsumeN measures.
func benchConsumeN(ctx context.Context, c *amqp.Connection, cfg workerConfig) (sub, con time.Duration, err error) {
	ch, err := c.Channel()
	if err != nil {
		return 0, 0, err
	}
	defer ch.Close()
	start := time.Now()
	if err := ch.Qos(cfg.Window, 0, false); err != nil {
		return 0, 0, err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, cfg.Queue, "", false, false, false, false, nil)
	if err != nil {
		return 0, 0, err
	}
	var first, last time.Time
	for i := 0; i < cfg.N; i++ {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return 0, 0, fmt.Errorf("deliveries ended after %d of %d", i, cfg.N)
			}
			switch i {
			case 0:
				first = time.Now()
			case cfg.N - 1:
				last = time.Now() // before its ack, as warren's handler returns before its ack
			}
			if err := d.Ack(false); err != nil {
				return 0, 0, err
			}
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	if cfg.N == 1 {
		last = first
	}
	return first.Sub(start), last.Sub(first), nil
}

// benchServiceChannels sets up what every long-lived contender holds: a
// confirm-mode channel to publish on, and a consumer on cfg.consumeQueue() whose
// deliveries a goroutine acknowledges. done is closed when that goroutine
// exits, which it does when amqp091-go closes the deliveries channel.
func benchServiceChannels(c *amqp.Connection, cfg workerConfig) (pub *amqp.Channel, done <-chan struct{}, err error) {
	pub, err = c.Channel()
	if err != nil {
		return nil, nil, err
	}
	if err := pub.Confirm(false); err != nil {
		return nil, nil, err
	}
	cons, err := c.Channel()
	if err != nil {
		return nil, nil, err
	}
	if err := cons.Qos(cfg.Window, 0, false); err != nil {
		return nil, nil, err
	}
	deliveries, err := cons.Consume(cfg.consumeQueue(), "", false, false, false, false, nil)
	if err != nil {
		return nil, nil, err
	}
	acker := make(chan struct{})
	go func() {
		defer close(acker)
		for d := range deliveries {
			_ = d.Ack(false)
		}
	}()
	return pub, acker, nil
}

// rawClient is amqp091-go with no reconnect at all: it reports a loss and
// stays down. It takes part in the idle scenario only.
type rawClient struct {
	conn    *amqp.Connection
	acker   <-chan struct{}
	watched chan struct{}
}

// connectRaw dials once and reports a loss, but never reconnects.
func connectRaw(ctx context.Context, cfg workerConfig, live *benchLiveness) (benchClient, error) {
	c, err := amqp.DialConfig(cfg.URL, benchAMQPConfig(cfg))
	if err != nil {
		return nil, err
	}
	closes := c.NotifyClose(make(chan *amqp.Error, 1))
	_, acker, err := benchServiceChannels(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	rc := &rawClient{conn: c, acker: acker, watched: make(chan struct{})}
	go func() {
		defer close(rc.watched)
		if err, ok := <-closes; ok && err != nil {
			live.lost(time.Now(), err, false)
		}
	}()
	return rc, nil
}

func (rc *rawClient) publishAll(context.Context, workerConfig) (benchBitset, error) {
	return nil, errBenchNotPublishing
}

func (rc *rawClient) close(ctx context.Context) error {
	err := rc.conn.Close()
	if errors.Is(err, amqp.ErrClosed) {
		err = nil
	}
	return errors.Join(err, benchWaitAll(ctx, rc.acker, rc.watched))
}

// benchWaitAll waits for every channel to be closed, bounded by ctx.
func benchWaitAll(ctx context.Context, chs ...<-chan struct{}) error {
	for _, ch := range chs {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
