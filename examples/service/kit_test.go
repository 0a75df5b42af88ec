package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/warrentest"
)

// TestOrdersSurviveConnectionKills is how a user tests a warren service
// with nothing but the public kit: the service runs on a user of its own,
// the test kills that user's connections twice while orders flow, and every
// order the service answered "confirmed" must reach the exchange's
// subscribers. Orders answered 503 during the outage were not confirmed and
// are not counted.
func TestOrdersSurviveConnectionKills(t *testing.T) {
	s := warrentest.Broker(t)
	url, user := s.User(t)
	cfg := config{URLs: []string{url}, Name: "kit-" + user, HTTPAddr: "127.0.0.1:0",
		Queue: "kit-orders", ShutdownTimeout: 10 * time.Second}
	addr, stop := startService(t, cfg)
	defer stop()

	ledger := warrentest.NewLedger()
	warrentest.Tap(t, s.URL, cfg.Queue, "created", ledger)

	client := &http.Client{Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const orders = 60
	for i := range orders {
		if i == orders/3 || i == 2*orders/3 {
			if err := s.Faults.CloseUserConnections(ctx, user); err != nil {
				t.Fatalf("killing the service's connections: %v", err)
			}
		}
		if id, ok := postOrder(ctx, t, client, addr); ok {
			ledger.Confirmed(id)
		}
	}
	ledger.AssertNoLoss(t, 30*time.Second)
	confirmed, received, dups := ledger.Counts()
	t.Logf("%d of %d orders confirmed, %d received, %d duplicates, on RabbitMQ %s (%s)", confirmed, orders, received, dups, s.Version, s.Source)
	if confirmed < orders/2 {
		t.Errorf("only %d of %d orders confirmed: the service did not recover from the kills", confirmed, orders)
	}
}

// startService runs the service until stop, which waits for its shutdown.
func startService(t *testing.T, cfg config) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("service stopped before serving: %v", err)
	case <-timer.C:
		cancel()
		t.Fatal("service not serving after 30s")
	}
	return addr, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("shutdown: %v", err)
			}
		case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
			t.Error("shutdown did not finish within its timeout")
		}
	}
}

// postOrder posts one order, retrying a 503 (the broker is unavailable)
// until ctx ends, and returns the message ID the service confirmed.
func postOrder(ctx context.Context, t *testing.T, client *http.Client, addr string) (string, bool) {
	t.Helper()
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/orders", strings.NewReader("order"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST /orders: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted && strings.HasPrefix(string(body), "confirmed "):
			return strings.TrimSpace(strings.TrimPrefix(string(body), "confirmed ")), true
		case resp.StatusCode != http.StatusServiceUnavailable:
			t.Fatalf("POST /orders = %d %q", resp.StatusCode, body)
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-retry.C:
		}
	}
}
