// Command service is an example microservice on warren, meant to be copied:
// an HTTP endpoint that takes orders and answers 202 only once RabbitMQ has
// confirmed them, a consumer that handles each order once, liveness and
// readiness probes, Prometheus metrics, every option from the environment,
// and a SIGTERM sequence that loses no accepted order. README.md in this
// directory documents the options, endpoints and shutdown.
//
//	AMQP_URLS=amqp://guest:guest@127.0.0.1:5672/ go run .
//	curl -H 'Idempotency-Key: order-42' -d '{"sku":1}' localhost:8080/orders   # 202 once confirmed
//	curl localhost:8080/readyz
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad configuration:\n%v\n", err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	os.Exit(serve(cfg, log))
}

// serve runs the service until SIGTERM or SIGINT and returns the exit
// status. A second signal during the shutdown is logged and ignored: the
// shutdown is bounded by DRAIN_PERIOD + SHUTDOWN_TIMEOUT already, and
// cutting it short would drop orders waiting for their confirms.
func serve(cfg config, log *slog.Logger) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log, nil) }()
	for {
		select {
		case sig := <-sigs:
			if ctx.Err() != nil {
				log.Warn("signal ignored: the shutdown is already under way", "signal", sig.String())
				continue
			}
			log.Info("signal received", "signal", sig.String())
			cancel()
		case err := <-done:
			if err != nil {
				log.Error("stopped with an error", "err", err)
				return 1
			}
			return 0
		}
	}
}
