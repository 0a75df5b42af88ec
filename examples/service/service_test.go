package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
)

// logBuffer is a slog destination the test can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

// TestServiceEndToEnd publishes through the HTTP endpoint, sees the consumer
// handle the message, checks /readyz, and shuts the service down the way
// SIGTERM does.
func TestServiceEndToEnd(t *testing.T) {
	b := broker.Shared(t)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	logs := &logBuffer{}
	cfg := defaultConfig()
	cfg.URLs, cfg.Name, cfg.HTTPAddr, cfg.Queue = []string{b.URL}, "example-service-test", "127.0.0.1:0", "example-orders"
	cfg.DrainPeriod = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), ready)
	}()

	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("service stopped before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("service not serving after 30s")
	}
	client := &http.Client{Timeout: 10 * time.Second}

	waitHealthy(t, client, addr)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/orders", strings.NewReader("order 42"))
	req.Header.Set("Idempotency-Key", "order-42")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotency-Key") != "order-42" ||
		string(body) != "confirmed order-42\n" {
		t.Fatalf("POST /orders = %d %q (key %q), want 202 accepted with key order-42",
			resp.StatusCode, body, resp.Header.Get("Idempotency-Key"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !logs.contains("idempotency_key=order-42") {
		if time.Now().After(deadline) {
			t.Fatal("the consumer never handled the published order")
		}
		time.Sleep(20 * time.Millisecond)
	}

	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("shutdown did not finish within its timeout")
	}
}

func waitHealthy(t *testing.T, client *http.Client, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "ready\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never reported ready (last error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"AMQP_URLS": " amqp://a:pw1@h1:1/ ,amqp://b:2/", "SHUTDOWN_TIMEOUT": "3s", "AMQP_HEARTBEAT": "2s",
		"RECONNECT_MAX": "1s", "RECONNECT_MULTIPLIER": "1.5", "CONSUMER_PREFETCH": "10", "CONSUMER_CONCURRENCY": "2",
		"PUBLISH_TIMEOUT": "1s", "MAX_IN_FLIGHT": "64", "DRAIN_PERIOD": "0s", "MAX_BODY": "100",
		"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "DEDUPE_WINDOW": "1m", "DEDUPE_SIZE": "10",
	}
	cfg, err := configFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.URLs = []string{"amqp://a:pw1@h1:1/", "amqp://b:2/"}
	want.ShutdownTimeout, want.Heartbeat, want.ReconnectMax, want.ReconnectMultiplier = 3*time.Second, 2*time.Second, time.Second, 1.5
	want.Prefetch, want.Concurrency, want.PublishTimeout, want.MaxInFlight = 10, 2, time.Second, 64
	want.DrainPeriod, want.MaxBody, want.LogLevel, want.LogFormat = 0, 100, slog.LevelDebug, "json"
	want.DedupeWindow, want.DedupeSize = time.Minute, 10
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("config =\n%+v\nwant\n%+v", cfg, want)
	}
	if logged := fmt.Sprint(cfg.LogValue()); strings.Contains(logged, "pw1") {
		t.Errorf("the logged configuration holds a password: %s", logged)
	}

	if _, err := configFromEnv(func(string) string { return "" }); err == nil {
		t.Error("missing AMQP_URLS accepted")
	}
	bad := map[string]string{
		"AMQP_URLS": "amqp://u:pw2@h/", "SHUTDOWN_TIMEOUT": "soon", "AMQP_HEARTBEAT": "10ms",
		"RECONNECT_JITTER": "NaN", "RECONNECT_MULTIPLIER": "0.5", "CONSUMER_CONCURRENCY": "0",
		"MAX_IN_FLIGHT": "-1", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "PUBLISH_TIMEOUT": "-1s",
	}
	_, err = configFromEnv(func(k string) string { return bad[k] })
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for k := range bad {
		if k != "AMQP_URLS" && !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
	if strings.Contains(err.Error(), "pw2") {
		t.Errorf("error holds a password: %v", err)
	}
}
