package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// maxBody bounds a published message: the endpoint is not a file upload.
const maxBody = 64 << 10

// run starts the service and blocks until ctx ends, then shuts down within
// cfg.ShutdownTimeout: the HTTP server stops taking requests, the consumer
// lets its in-flight message finish, and the supervisor waits for the last
// confirms. If ready is not nil it receives the HTTP address once serving.
func run(ctx context.Context, cfg config, log *slog.Logger, ready chan<- string) error {
	sup, err := conn.New(conn.Options{
		URLs:           cfg.URLs,
		ConnectionName: cfg.Name,
		Logger:         log,
		OnEvent: func(e conn.Event) {
			if e.Kind == conn.EventConnected || e.Kind == conn.EventConnectionLost {
				log.Info("broker", "event", e.Kind.String(), "url", e.URL, "err", e.Err)
			}
		},
	})
	if err != nil {
		return err
	}

	queue := &conn.Queue{Name: cfg.Queue, Durable: true}
	if _, err := sup.DeclareTopology(ctx, conn.Topology{
		Exchanges: []conn.Exchange{{Name: cfg.Queue, Kind: amqp.ExchangeDirect, Durable: true}},
		Queues:    []*conn.Queue{queue},
		Bindings:  []conn.Binding{{Queue: queue, Exchange: cfg.Queue, Key: "created"}},
	}); err != nil {
		return closeWith(sup, cfg, fmt.Errorf("declare topology: %w", err))
	}
	pub, err := sup.NewPublisher(ctx, conn.PublisherOptions{Name: "orders-http", Mandatory: true})
	if err != nil {
		return closeWith(sup, cfg, err)
	}
	consumer, err := sup.Consume(ctx, queue, func(ctx context.Context, d amqp.Delivery) error {
		log.Info("order received", "message_id", d.MessageId, "bytes", len(d.Body), "redelivered", d.Redelivered)
		return nil // nil acks; an error would nack (and requeue) it
	}, conn.ConsumerOptions{Name: cfg.Name + "-orders"})
	if err != nil {
		return closeWith(sup, cfg, err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/orders", publishHandler(sup, pub, cfg.Queue))
	mux.HandleFunc("/healthz", healthHandler(sup))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return closeWith(sup, cfg, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("serving", "addr", l.Addr().String())
	if ready != nil {
		ready <- l.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err = <-served:
	}

	// One deadline for the whole shutdown; every step runs even if one fails.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	errs := []error{err}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := consumer.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("consumer close: %w", err))
	}
	if err := pub.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("publisher close: %w", err))
	}
	if err := sup.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("supervisor close: %w", err))
	}
	err = errors.Join(errs...)
	if errors.Is(err, http.ErrServerClosed) && len(errs) == 1 {
		return nil
	}
	return err
}

func closeWith(sup *conn.Supervisor, cfg config, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, sup.Close(ctx))
}

// publishHandler publishes the request body and answers 202 only once the
// broker confirmed it; the request's context bounds the wait, so a client
// that gives up (or the 5 s cap) never leaves a handler stuck in an outage.
func publishHandler(sup *conn.Supervisor, pub *conn.Publisher, exchange string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		conf, err := pub.PublishAsync(ctx, exchange, "created", amqp.Publishing{
			ContentType:  "text/plain",
			DeliveryMode: amqp.Persistent,
			Body:         body,
		})
		if err == nil {
			err = conf.Wait(ctx)
		}
		switch {
		case err == nil:
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, "confirmed %s\n", conf.MessageID())
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, conn.ErrClosed):
			http.Error(w, "broker unavailable: "+sup.State().String(), http.StatusServiceUnavailable)
		default:
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}
}

// healthHandler reports ready only while the supervisor is Ready and the
// broker does not block publishing.
func healthHandler(sup *conn.Supervisor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := sup.State()
		w.Header().Set("Content-Type", "application/json")
		if st != conn.Ready || sup.Blocked() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "{\"state\":%q,\"blocked\":%t}\n", st, sup.Blocked())
	}
}
