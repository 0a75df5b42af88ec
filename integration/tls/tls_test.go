package tls_test

import (
	"context"
	"crypto/tls"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
	"github.com/warrenmq/warren/integration/testkit"
	"github.com/warrenmq/warren/reconnect"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 60 * time.Second
)

// start creates a supervisor on one URL with tc (see testkit.Start).
func start(t *testing.T, rawURL string, tc *tls.Config) (*conn.Supervisor, *testkit.Recorder) {
	t.Helper()
	return testkit.Start(t, conn.Options{URLs: []string{rawURL}, TLS: tc})
}

// tlsURLWith is the TLS listener's URL with other credentials.
func tlsURLWith(t *testing.T, b *broker.Broker, user, pass string) string {
	t.Helper()
	u, err := url.Parse(b.TLSURL)
	if err != nil || b.TLSURL == "" {
		t.Fatalf("no TLS listener (%q): %v", b.TLSURL, err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// TestTLSEndToEnd: with the right CA, amqps works as amqp does: publish with
// a confirm, consume, and recover after the broker kills the connection.
func TestTLSEndToEnd(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testkit.TestUser(t, b, faultTimeout)
	s, rec := start(t, tlsURLWith(t, b, user, pass), &tls.Config{RootCAs: pki.ca.Pool, ServerName: "localhost"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady over TLS: %v (last error %v)", err, s.Err())
	}
	q := &conn.Queue{Name: "warren-tls-e2e", AutoDelete: true}
	if _, err := s.DeclareTopology(ctx, conn.Topology{Queues: []*conn.Queue{q}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	if _, err := s.Consume(ctx, q, func(_ context.Context, d amqp.Delivery) error {
		got <- string(d.Body)
		return nil
	}, conn.ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := s.NewPublisher(ctx, conn.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(body string) {
		t.Helper()
		if err := pub.Publish(ctx, "", q.Name, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatalf("Publish %q: %v", body, err)
		}
		select {
		case b := <-got:
			if b != body {
				t.Fatalf("consumed %q, want %q", b, body)
			}
		case <-ctx.Done():
			t.Fatalf("%q confirmed but never consumed", body)
		}
	}
	roundTrip("before the kill")

	from := rec.Count()
	fctx, fcancel := context.WithTimeout(context.Background(), faultTimeout)
	defer fcancel()
	if err := b.Faults.CloseUserConnections(fctx, user); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, from, defaultTestTimeout, "reconnected over TLS", testkit.Kind(conn.EventConnected))
	roundTrip("after the kill")
	if st := s.Stats(); st.Reconnects < 1 {
		t.Errorf("stats %+v: want a reconnect", st)
	}
}

// TestTLSVerificationStops: a certificate the client cannot verify is a
// configuration error; the supervisor stops at once with a permanent error
// that says which check failed.
func TestTLSVerificationStops(t *testing.T) {
	b := broker.Shared(t)
	tests := []struct {
		name   string
		config *tls.Config
		reason string // Classify's
		text   string // in Err's text, from crypto/x509
	}{
		{"unknown CA", &tls.Config{RootCAs: pki.stranger.Pool, ServerName: "localhost"},
			"TLS: certificate signed by unknown authority", "certificate signed by unknown authority"},
		{"host name mismatch", &tls.Config{RootCAs: pki.ca.Pool, ServerName: "rabbit.example.com"},
			"TLS: certificate is not valid for the host name", "not rabbit.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := start(t, b.TLSURL, tt.config)
			select {
			case <-s.Done():
			case <-time.After(defaultTestTimeout):
				t.Fatalf("still running after %s; events: %s", tt.name, testkit.Describe(rec.Snapshot()))
			}
			err := s.Err()
			class, reason := reconnect.Classify(err)
			if class != reconnect.Permanent || reason != tt.reason {
				t.Errorf("Classify(Err()) = %v %q, want permanent %q", class, reason, tt.reason)
			}
			if err == nil || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Err() = %v, want it to say %q", err, tt.text)
			}
			if st := s.Stats(); st.Dials != 1 {
				t.Errorf("%d dials, want exactly 1", st.Dials)
			}
		})
	}
}

// TestTLSExternal: a client certificate logs in with SASL EXTERNAL as the
// user its common name names, no password in the URL; a certificate from a
// CA the broker does not trust is refused for good.
func TestTLSExternal(t *testing.T) {
	b := broker.Shared(t)
	user, _ := testkit.TestUser(t, b, faultTimeout)
	rawURL := "amqps://" + amqpsAddr(t, b) + "/?auth_mechanism=external"

	t.Run("trusted client certificate", func(t *testing.T) {
		cert, err := pki.ca.IssueClient(user)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := start(t, rawURL, &tls.Config{RootCAs: pki.ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{cert.TLS}})
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		if err := s.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady with EXTERNAL: %v (last error %v)", err, s.Err())
		}
		conns, err := b.Faults.ListConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range conns {
			found = found || c.User == user
		}
		if !found {
			t.Errorf("no connection of user %q: EXTERNAL did not log in as the certificate's common name", user)
		}
	})
	t.Run("client certificate from an unknown CA", func(t *testing.T) {
		cert, err := pki.stranger.IssueClient(user)
		if err != nil {
			t.Fatal(err)
		}
		s, rec := start(t, rawURL, &tls.Config{RootCAs: pki.ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{cert.TLS}})
		select {
		case <-s.Done():
		case <-time.After(defaultTestTimeout):
			t.Fatalf("still running with an untrusted client certificate; events: %s", testkit.Describe(rec.Snapshot()))
		}
		// RabbitMQ 3.10 lets the handshake finish (fail_if_no_peer_cert is
		// false, so password clients can use the listener too) and then
		// refuses the EXTERNAL login: 403.
		if err := s.Err(); !reconnect.IsPermanent(err) {
			t.Errorf("Err() = %v, want a permanent error", err)
		} else {
			t.Logf("refused: %v", err)
		}
	})
}

// TestTLSDeadPeer: the dead-peer Monitor sits under TLS, on the raw socket,
// so a partition is detected within the plain limit over amqps too, and the
// supervisor reconnects when it heals.
func TestTLSDeadPeer(t *testing.T) {
	b := broker.Shared(t)
	p, err := faultproxy.New(amqpsAddr(t, b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	const heartbeat, limit = 2 * time.Second, 3 * time.Second
	s, rec := testkit.Start(t, conn.Options{
		URLs:          []string{"amqps://guest:guest@" + p.Addr() + "/"},
		TLS:           &tls.Config{RootCAs: pki.ca.Pool, ServerName: "localhost"},
		Heartbeat:     heartbeat,
		DeadPeerLimit: limit,
	})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v (last error %v)", err, s.Err())
	}
	from := rec.Count()
	begin := time.Now()
	p.Blackhole()
	// The limit, plus scheduling slack on a loaded 2-core machine.
	rec.WaitFor(t, from, limit+5*time.Second, "a dead peer over TLS", testkit.Kind(conn.EventDeadPeer))
	t.Logf("dead peer detected %v after the partition (limit %v)", time.Since(begin).Round(time.Millisecond), limit)
	from = rec.Count()
	p.Heal()
	rec.WaitFor(t, from, defaultTestTimeout, "reconnected after the partition", testkit.Kind(conn.EventConnected))
}

// amqpsAddr is the host:port of the TLS listener.
func amqpsAddr(t *testing.T, b *broker.Broker) string {
	t.Helper()
	u, err := url.Parse(b.TLSURL)
	if err != nil || b.TLSURL == "" {
		t.Fatalf("no TLS listener (%q): %v", b.TLSURL, err)
	}
	return u.Host
}
