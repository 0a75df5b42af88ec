package main

import (
	"context"
	"time"
)

// benchDetectRate is the publish rate of the loaded detection variant:
// confirmed messages a second, at or above issue 16's 200.
const benchDetectRate = 250

// benchDetectLoadStop bounds how long a worker waits for its publishing
// goroutine after the loss; the process exits right after anyway.
const benchDetectLoadStop = 2 * time.Second

// detectionLoad starts publishing with confirms at cfg.Rate on cl, the
// contender's own publishing path, when cfg.Rate is positive (the loaded
// variant of the detection scenario), and returns the function that stops
// it. With cfg.Rate 0 it does nothing.
func detectionLoad(ctx context.Context, cl benchClient, cfg workerConfig) (stop func()) {
	if cfg.Rate <= 0 {
		return func() {}
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = cl.publishAll(lctx, cfg)
	}()
	return func() {
		cancel()
		t := time.NewTimer(benchDetectLoadStop)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	}
}
