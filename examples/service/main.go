// Command service is an example microservice built on warren: options from the
// environment, a declared topology, an HTTP endpoint that publishes with
// publisher confirms, a consumer, a /healthz endpoint driven by the
// supervisor's state, and a bounded shutdown on SIGTERM.
//
//	AMQP_URLS=amqp://guest:guest@127.0.0.1:5672/ go run .
//	curl -d 'order 42' localhost:8080/orders      # 202 only after the broker confirmed
//	curl localhost:8080/healthz
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		log.Error("bad configuration", "err", err)
		os.Exit(2)
	}
	// SIGTERM (Kubernetes, systemd) and Ctrl-C start a graceful shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
