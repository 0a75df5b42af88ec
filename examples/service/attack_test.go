package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
	"github.com/warrenmq/warren/integration/testkit"
)

// inProcess runs the service with cfg in this process and stops it at the
// end of the test, checking that it stops within its bound.
func inProcess(t *testing.T, cfg config) (base string, logs *logBuffer) {
	t.Helper()
	logs = &logBuffer{}
	// Runs after the shutdown below: the clients' kept-alive connections
	// would otherwise count as leaked goroutines.
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), ready)
	}()
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("service stopped before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("service not serving after 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("shutdown: %v", err)
			}
		case <-time.After(cfg.DrainPeriod + cfg.ShutdownTimeout + 5*time.Second):
			t.Error("shutdown did not finish within DRAIN_PERIOD + SHUTDOWN_TIMEOUT")
		}
	})
	return base, logs
}

func testConfig(url, name string) config {
	cfg := defaultConfig()
	cfg.URLs, cfg.Name, cfg.Queue, cfg.HTTPAddr = []string{url}, name, name, "127.0.0.1:0"
	cfg.DrainPeriod, cfg.ShutdownTimeout = 50*time.Millisecond, 5*time.Second
	cfg.PublishTimeout = 2 * time.Second
	return cfg
}

func post(t *testing.T, base, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/orders", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestRetriesWithOneKeyWhileBrokerDown retries one order with the same key
// while the broker cannot be reached (every answer a quick 503 with
// Retry-After and the key), then after it is back, twice: the order is
// processed once.
func TestRetriesWithOneKeyWhileBrokerDown(t *testing.T) {
	b := broker.Shared(t)
	proxy, err := faultproxy.New(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Refuse(true)
	cfg := testConfig(b.URLVia(proxy.Addr()), testkit.UniqueName("retry-key"))
	base, logs := inProcess(t, cfg)

	resp, _ := post(t, base, "", "x")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Idempotency-Key") == "" {
		t.Fatalf("POST without a key while down = %d (key %q), want 503 with a generated key", resp.StatusCode,
			resp.Header.Get("Idempotency-Key"))
	}
	for i := 0; i < 20; i++ {
		start := time.Now()
		resp, body := post(t, base, "order-7", "x")
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("503 took %v: a request must not wait for a connection that is not there", took)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
			resp.Header.Get("Idempotency-Key") != "order-7" || !strings.Contains(body, "not connected to RabbitMQ") {
			t.Fatalf("retry %d while down = %d %q (Retry-After %q)", i, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	r, err := http.Get(base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("/livez while the broker is down = %d, want 200", r.StatusCode)
	}
	if r, err := http.Get(base + "/readyz"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(string(b), "not ready: not connected to RabbitMQ yet") {
			t.Errorf("/readyz while the broker is down = %d %q", r.StatusCode, b)
		}
	}
	proxy.Refuse(false)
	waitReady(t, base)
	for i := 0; i < 2; i++ {
		if resp, body := post(t, base, "order-7", "x"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST once the broker is back = %d %q", resp.StatusCode, body)
		}
	}
	waitLog(t, logs, "idempotency_key=order-7")
	time.Sleep(300 * time.Millisecond) // the second copy is delivered by now; it must be dropped
	if n := strings.Count(logs.String(), "msg=\"order processed\" idempotency_key=order-7"); n != 1 {
		t.Errorf("order-7 processed %d times, want once", n)
	}
}

// TestHostileClients: huge bodies and headers, bad keys, a slowloris that
// drips its headers and one that drips its body. Each is turned away within
// the server's timeouts, and an honest client is served meanwhile.
func TestHostileClients(t *testing.T) {
	b := broker.Shared(t)
	cfg := testConfig(b.URL, testkit.UniqueName("hostile"))
	cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.MaxBody = 300*time.Millisecond, 600*time.Millisecond, 1024
	base, _ := inProcess(t, cfg)
	waitReady(t, base)
	addr := strings.TrimPrefix(base, "http://")

	if resp, body := post(t, base, "big", strings.Repeat("x", 10<<20)); resp.StatusCode != http.StatusRequestEntityTooLarge ||
		!strings.Contains(body, "MAX_BODY") {
		t.Errorf("10 MB body = %d %q, want 413", resp.StatusCode, body)
	}
	for _, key := range []string{"has space", strings.Repeat("k", 129), "naïve"} {
		if resp, body := post(t, base, key, "x"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("key %q = %d %q, want 400", key, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/orders", strings.NewReader("x"))
	req.Header.Add("Idempotency-Key", "a")
	req.Header.Add("Idempotency-Key", "b")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two keys = %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/orders", strings.NewReader("x"))
	req.Header.Set("X-Junk", strings.Repeat("j", 64<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KB header = %v %v, want 431", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(base + "/orders"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /orders = %v %v, want 405", resp, err)
	} else {
		resp.Body.Close()
	}

	// Slowloris: headers dripped, and a body dripped after full headers.
	closedWithin := func(what, start string, drip string, bound time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		begin := time.Now()
		if _, err := io.WriteString(c, start); err != nil {
			t.Fatal(err)
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case <-deadline:
				t.Errorf("%s: connection still open after 5s", what)
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(c, drip); err != nil {
				break
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 512)); err != nil && !isTimeout(err) {
				break
			}
		}
		if took := time.Since(begin); took > bound {
			t.Errorf("%s: closed after %v, want within %v", what, took, bound)
		}
	}
	honest := make(chan int, 1)
	go func() {
		resp, _ := post(t, base, "honest", "x")
		honest <- resp.StatusCode
	}()
	closedWithin("dripped headers", "POST /orders HTTP/1.1\r\nHost: x\r\n", "X-A: b\r\n", 2*time.Second)
	closedWithin("dripped body", "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", "x", 2*time.Second)
	if code := <-honest; code != http.StatusAccepted {
		t.Errorf("honest client during the attack = %d, want 202", code)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestBadCredentials: by default a refused login keeps the service up and
// not ready, saying why; with AMQP_RETRY_PERMANENT=false it ends run with
// an error (the process exits 1). No log line, body or error holds the
// password.
func TestBadCredentials(t *testing.T) {
	b := broker.Shared(t)
	url := b.URLWith("nobody", "s3cret-pw", "")
	cfg := testConfig(url, testkit.UniqueName("badcreds"))
	base, logs := inProcess(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if strings.Contains(string(body), "s3cret-pw") {
			t.Fatalf("/readyz holds the password: %q", body)
		}
		if r.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "RabbitMQ refused the last attempt") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q, want 503 naming the refusal", r.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "s3cret-pw") {
		t.Errorf("password in the log:\n%s", logs.String())
	}

	cfg = testConfig(url, testkit.UniqueName("badcreds-exit"))
	cfg.RetryPermanent = false
	logs = &logBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), nil) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("run returned nil after bad credentials")
		}
		if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(logs.String(), "s3cret-pw") {
			t.Errorf("password leaked: err %v\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run still running 30s after bad credentials")
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitLog(t *testing.T, logs *logBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !logs.contains(s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never logged", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
