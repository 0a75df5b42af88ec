package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/reconnect"
)

// service is what the HTTP handlers share.
type service struct {
	cfg    config
	log    *slog.Logger
	pub    *conn.Publisher
	health *health
	window *window
	stats  *serviceStats
}

// run starts the service and blocks until ctx ends (SIGTERM), the HTTP
// server fails, or a supervisor stops for good (bad credentials, say). If
// ready is not nil it receives the HTTP address once serving.
//
// Publishing and consuming use a connection each, as RabbitMQ advises: a
// broker that blocks publishers (a resource alarm) blocks their whole
// connection, and consumers on it could no longer acknowledge, which is what
// would relieve the broker.
//
// Shutdown, in this order (each step says why it comes where it does):
//  1. /readyz answers 503: load balancers stop sending new requests.
//  2. For DRAIN_PERIOD requests are still served, with keep-alive off, so
//     clients that have not noticed yet are answered, not refused, and
//     move to fresh connections.
//  3. The listener closes and requests in flight finish (http.Server
//     Shutdown): each is bounded by PUBLISH_TIMEOUT, and all of them by
//     SHUTDOWN_TIMEOUT.
//  4. The consumer finishes its handlers, the publisher waits for its last
//     confirms, and both connections close: within what is left of
//     SHUTDOWN_TIMEOUT.
func run(ctx context.Context, cfg config, log *slog.Logger, ready chan<- string) (err error) {
	cfg = cfg.withDefaults()
	tr, err := newTracing(cfg, os.Stdout)
	if err != nil {
		return err
	}
	// The spans still buffered are flushed last, once nothing makes more;
	// on the normal path within SHUTDOWN_TIMEOUT (below), on a failed start
	// here.
	flushed := false
	defer func() {
		if !flushed {
			err = errors.Join(err, closeTracing(cfg.ShutdownTimeout, tr))
		}
	}()
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	s := &service{cfg: cfg, log: log, window: newWindow(cfg.MaxInFlight), stats: &serviceStats{}}
	m, err := newMetrics(s.stats, s.window)
	if err != nil {
		l.Close()
		return err
	}

	h := newHealth(s.window)
	s.health = h
	// warrenprom's event handlers time the first dial from newMetrics, just
	// before the supervisors.
	pubSup, err := newSupervisor(cfg, "publish", log, eventHandlers(h.noteEvent, m.pub.OnEvent))
	if err != nil {
		l.Close()
		return err
	}
	h.pub = pubSup // before anything serves: noteEvent does not read it
	conSup, err := newSupervisor(cfg, "consume", log, m.con.OnEvent)
	if err != nil {
		l.Close()
		return errors.Join(err, closeAll(cfg.ShutdownTimeout, nil, pubSup))
	}
	sups := []*conn.Supervisor{pubSup, conSup}
	if err := m.register(pubSup, conSup); err != nil {
		l.Close()
		return errors.Join(err, closeAll(cfg.ShutdownTimeout, nil, sups...))
	}

	queue := &conn.Queue{Name: cfg.Queue, Durable: true}
	topology := conn.Topology{
		Exchanges: []conn.Exchange{{Name: cfg.Queue, Kind: amqp.ExchangeDirect, Durable: true}},
		Queues:    []*conn.Queue{queue},
		Bindings:  []conn.Binding{{Queue: queue, Exchange: cfg.Queue, Key: routingKey}},
	}
	// Setup waits for nothing while the broker is down: every call below
	// registers what to do on each new connection and returns.
	setupErr := func() error {
		for _, sup := range sups {
			if _, err := sup.DeclareTopology(ctx, topology); err != nil {
				return fmt.Errorf("declare topology: %w", err)
			}
		}
		var err error
		// Tracing first: the producer span then covers the metrics
		// interceptor's work too, and the message carries its context.
		s.pub, err = pubSup.NewPublisher(ctx, conn.PublisherOptions{Name: "orders-http", Mandatory: true,
			MaxInFlight:  cfg.MaxInFlight,
			Interceptors: append(tr.interceptors(), m.pub.PublishInterceptor())})
		return err
	}()
	if setupErr != nil {
		l.Close()
		return errors.Join(setupErr, closeAll(cfg.ShutdownTimeout, nil, sups...))
	}
	orders := newOrders(log, s.stats)
	consumer, err := conSup.Consume(ctx, queue, orders.handle, conn.ConsumerOptions{
		Name:        cfg.Name + "-orders",
		Prefetch:    cfg.Prefetch,
		Concurrency: cfg.Concurrency,
		Dedupe:      &conn.DedupeOptions{Window: cfg.DedupeWindow, Size: cfg.DedupeSize},
		Middleware:  append(tr.middleware(), m.con.HandlerMiddleware()),
	})
	if err != nil {
		l.Close()
		return errors.Join(err, closeAll(cfg.ShutdownTimeout, []closer{s.pub}, sups...))
	}

	mux := http.NewServeMux()
	mux.Handle("/orders", tr.traceRequests("/orders", s.postOrder))
	mux.HandleFunc("/livez", h.livez)
	mux.HandleFunc("/readyz", h.readyz)
	mux.Handle("/metrics", m.handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + cfg.PublishTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("serving", "addr", l.Addr().String(), "config", cfg)
	if ready != nil {
		ready <- l.Addr().String()
	}

	var cause error
	select {
	case <-ctx.Done():
		log.Info("shutting down: not ready from now on", "drain_period", cfg.DrainPeriod,
			"shutdown_timeout", cfg.ShutdownTimeout)
	case cause = <-served:
		cause = fmt.Errorf("http server: %w", cause)
	case <-pubSup.Done():
		cause = fmt.Errorf("publishing connection stopped: %w", pubSup.Err())
	case <-conSup.Done():
		cause = fmt.Errorf("consuming connection stopped: %w", conSup.Err())
	}
	if cause != nil {
		log.Error("shutting down", "err", cause)
	}

	h.draining.Store(true)
	srv.SetKeepAlivesEnabled(false)
	if cause == nil {
		drain := time.NewTimer(cfg.DrainPeriod)
		select {
		case <-drain.C:
		case cause = <-served:
			drain.Stop()
			cause = fmt.Errorf("http server: %w", cause)
		}
	}

	// One deadline for the rest; every step runs even if one fails.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	errs := []error{cause}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		srv.Close() // handlers still running past the deadline lose their connections
	}
	errs = append(errs, closeWithin(sctx, []closer{consumer, s.pub}, sups...))
	flushed = true
	if err := tr.shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("tracing shutdown: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newSupervisor makes the supervisor of one connection; role names it
// ("publish" or "consume") in the broker's connection list and the log.
func newSupervisor(cfg config, role string, log *slog.Logger, onEvent func(conn.Event)) (*conn.Supervisor, error) {
	return conn.New(conn.Options{
		URLs:           cfg.URLs,
		ConnectionName: cfg.Name + "-" + role,
		Heartbeat:      cfg.Heartbeat,
		DeadPeerLimit:  cfg.DeadPeerLimit,
		DialTimeout:    cfg.DialTimeout,
		BlockedTimeout: cfg.BlockedTimeout,
		RetryPermanent: cfg.RetryPermanent,
		Reconnect: reconnect.Policy{
			Initial:    cfg.ReconnectInitial,
			Max:        cfg.ReconnectMax,
			Multiplier: cfg.ReconnectMultiplier,
			Jitter:     cfg.ReconnectJitter,
		},
		// warren logs state changes, dials and blocks itself, once; the
		// service adds nothing to them.
		Logger:  log.With("connection", role),
		OnEvent: onEvent,
	})
}

// eventHandlers calls each of hs with every event, in order.
func eventHandlers(hs ...func(conn.Event)) func(conn.Event) {
	return func(e conn.Event) {
		for _, h := range hs {
			h(e)
		}
	}
}

// closeTracing flushes and stops tracing within timeout; for failures
// during setup.
func closeTracing(timeout time.Duration, tr *tracing) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tr.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// closer is a consumer or publisher.
type closer interface{ Close(context.Context) error }

// closeAll closes within timeout; for failures during setup.
func closeAll(timeout time.Duration, cs []closer, sups ...*conn.Supervisor) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return closeWithin(ctx, cs, sups...)
}

// closeWithin closes cs, then sups, all bounded by ctx, and joins their
// errors: one failing does not skip the others.
func closeWithin(ctx context.Context, cs []closer, sups ...*conn.Supervisor) error {
	var errs []error
	for _, c := range cs {
		if c != nil {
			if err := c.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, sup := range sups {
		if err := sup.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
