package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/reconnect"
)

// benchWarrenOptions are warren's defaults except the bench's heartbeat and
// no logging (the baselines log nothing either). The reconnect policy is the
// default one, as users get it; -reset-after overrides its ResetAfter for
// experiments.
func benchWarrenOptions(cfg workerConfig, onEvent func(conn.Event)) conn.Options {
	return conn.Options{
		URLs:           []string{cfg.URL},
		ConnectionName: cfg.ConnName,
		Heartbeat:      cfg.Heartbeat,
		Reconnect:      reconnect.Policy{ResetAfter: cfg.ResetAfter},
		Logger:         slog.New(slog.DiscardHandler),
		OnEvent:        onEvent,
	}
}

// warrenThroughput publishes through a Publisher (PublishAsync, window
// MaxInFlight) and consumes through a Consumer (Prefetch), both with
// cfg.Window.
func warrenThroughput(ctx context.Context, cfg workerConfig) (res *workerResult, err error) {
	s, err := conn.New(benchWarrenOptions(cfg, nil))
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), benchCloseTimeout)
		defer cancel()
		err = errors.Join(err, s.Close(cctx))
	}()
	if err := s.WaitReady(ctx); err != nil {
		return nil, err
	}
	pub, err := s.NewPublisher(ctx, conn.PublisherOptions{Name: "bench", MaxInFlight: cfg.Window})
	if err != nil {
		return nil, err
	}
	pubDur, err := warrenPublishN(ctx, pub, cfg)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	sub, con, err := warrenConsumeN(ctx, s, cfg)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	return &workerResult{PublishNS: int64(pubDur), ConsumeNS: int64(con), SubscribeNS: int64(sub), Messages: cfg.N}, nil
}

// warrenPublishN publishes cfg.N messages with PublishAsync and waits for
// their confirmations in order on a second goroutine, as rawThroughput does
// with NotifyPublish.
func warrenPublishN(ctx context.Context, pub *conn.Publisher, cfg workerConfig) (time.Duration, error) {
	pending := make(chan *conn.Confirmation, cfg.Window)
	waited := make(chan error, 1)
	start := time.Now()
	go func() {
		var first error
		for c := range pending {
			if err := c.Wait(ctx); err != nil && first == nil {
				first = err
			}
		}
		waited <- first
	}()
	var err error
	for i := 0; i < cfg.N; i++ {
		var c *conn.Confirmation
		if c, err = pub.PublishAsync(ctx, "", cfg.Queue, benchMessage(i, cfg.Size)); err != nil {
			break
		}
		pending <- c
	}
	close(pending)
	if err = errors.Join(err, <-waited); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// warrenConsumeN consumes cfg.N messages with a Consumer whose handler
// returns nil (warren acknowledges). It returns the time from Consume to the
// first handler call (sub: with the default options that includes declaring
// the consumer's retry queues and opening the publisher for them) and from
// the first handler call to the last (con), as benchConsumeN does.
func warrenConsumeN(ctx context.Context, s *conn.Supervisor, cfg workerConfig) (sub, con time.Duration, err error) {
	done := make(chan struct{})
	var handled atomic.Int64
	// Offsets from start; atomic because a resubscription would run the
	// handler on a goroutine of its own.
	var first, last atomic.Int64
	start := time.Now()
	cons, err := s.Consume(ctx, conn.NamedQueue(cfg.Queue), func(context.Context, amqp.Delivery) error {
		n := handled.Add(1)
		if n == 1 {
			first.Store(int64(time.Since(start)))
		}
		if n == int64(cfg.N) {
			last.Store(int64(time.Since(start)))
			close(done)
		}
		return nil
	}, conn.ConsumerOptions{Name: "bench", Prefetch: cfg.Window})
	if err != nil {
		return 0, 0, err
	}
	select {
	case <-done:
		sub, con = time.Duration(first.Load()), time.Duration(last.Load()-first.Load())
	case <-ctx.Done():
		err = fmt.Errorf("handled %d of %d: %w", handled.Load(), cfg.N, ctx.Err())
	}
	cctx, cancel := context.WithTimeout(context.Background(), benchCloseTimeout)
	defer cancel()
	return sub, con, errors.Join(err, cons.Close(cctx))
}

// warrenClient is a Supervisor with a Publisher and a Consumer. A loss is
// its EventDeadPeer or EventConnectionLost (whichever comes first, with the
// event's own timestamp); it is publishable again at EventStateChanged to
// Ready, which warren emits only after the publisher's channel is in confirm
// mode and the consumer has subscribed again.
type warrenClient struct {
	s   *conn.Supervisor
	pub *conn.Publisher
}

// connectWarren starts a Supervisor with a Publisher and a Consumer and
// returns once all three are up.
func connectWarren(ctx context.Context, cfg workerConfig, live *benchLiveness) (benchClient, error) {
	s, err := conn.New(benchWarrenOptions(cfg, func(e conn.Event) {
		switch {
		case e.Kind == conn.EventDeadPeer:
			live.lost(e.Time, e.Err, true)
		case e.Kind == conn.EventConnectionLost:
			live.lost(e.Time, e.Err, false)
		case e.Kind == conn.EventStateChanged && e.State == conn.Ready:
			live.up(e.Time)
		}
	}))
	if err != nil {
		return nil, err
	}
	wc := &warrenClient{s: s}
	fail := func(err error) (benchClient, error) {
		if cerr := s.Err(); cerr != nil {
			err = fmt.Errorf("%w (last connection error: %w)", err, cerr)
		}
		_ = closeBenchClient(wc)
		return nil, err
	}
	if err := s.WaitReady(ctx); err != nil {
		return fail(err)
	}
	if wc.pub, err = s.NewPublisher(ctx, conn.PublisherOptions{Name: "bench", MaxInFlight: cfg.Window}); err != nil {
		return fail(err)
	}
	ack := func(context.Context, amqp.Delivery) error { return nil }
	if _, err := s.Consume(ctx, conn.NamedQueue(cfg.consumeQueue()), ack, conn.ConsumerOptions{Name: "bench", Prefetch: cfg.Window}); err != nil {
		return fail(err)
	}
	return wc, nil
}

// publishAll publishes with PublishAsync at cfg.Rate and leaves the rest to
// the Publisher: messages whose connection dies before their confirm are
// republished (ConfirmLostRepublish, the default) while ctx lasts.
func (wc *warrenClient) publishAll(ctx context.Context, cfg workerConfig) (benchBitset, error) {
	type pend struct {
		id int
		c  *conn.Confirmation
	}
	confirmed := newBenchBitset(cfg.N)
	pending := make(chan pend, cfg.Window)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for p := range pending {
			if p.c.Wait(ctx) == nil {
				confirmed.set(p.id)
			}
		}
	}()
	pace := newBenchPacer(cfg.Rate)
	var err error
	for i := 0; i < cfg.N; i++ {
		if err = pace.wait(ctx, i); err != nil {
			break
		}
		var c *conn.Confirmation
		if c, err = wc.pub.PublishAsync(ctx, "", cfg.Queue, benchMessage(i, cfg.Size)); err != nil {
			if ctx.Err() != nil {
				break
			}
			continue // not accepted, and not a transient condition: the message is lost to the caller
		}
		pending <- pend{id: i, c: c}
	}
	close(pending)
	<-collected
	if ctx.Err() != nil {
		return confirmed, ctx.Err()
	}
	return confirmed, nil
}

func (wc *warrenClient) close(ctx context.Context) error {
	return wc.s.Close(ctx)
}
