package errors_test

import (
	"context"
	"errors"
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
	// stopTimeout bounds how long a supervisor may take to stop on a
	// permanent refusal: one dial and one declaration, on a loaded machine.
	stopTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 60 * time.Second
	// settle is how long a stopped supervisor is watched for further dials.
	settle = 500 * time.Millisecond
)

// TestRefusedTopologyStopsSupervisor declares, before the first connection is
// Ready, a topology the broker refuses for what it says. Retrying cannot fix
// any of them, so the supervisor must stop with a permanent error naming the
// entity instead of redialing forever.
func TestRefusedTopologyStopsSupervisor(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testkit.TestUser(t, b, faultTimeout)
	url := b.URLWith(user, pass, "/")

	// An exchange that exists as direct, for the 406 case.
	existing := "warren-errors-existing-" + strings.ReplaceAll(t.Name(), "/", "-")
	declareRaw(t, url, existing, "direct")

	tests := []struct {
		name     string
		exchange conn.Exchange
		want     []string // in Err's text
	}{
		{"unknown kind (503 closes the connection)",
			conn.Exchange{Name: "warren-errors-typo", Kind: "topc"},
			[]string{`exchange "warren-errors-typo"`, `"topc"`, "503", "COMMAND_INVALID"}},
		{"exists with another kind (406)",
			conn.Exchange{Name: existing, Kind: "fanout"},
			[]string{`exchange "` + existing + `"`, "406", "PRECONDITION_FAILED"}},
		{"reserved name (403)",
			conn.Exchange{Name: "amq.warren-errors", Kind: "direct"},
			[]string{`exchange "amq.warren-errors"`, "403", "ACCESS_REFUSED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The proxy refuses until the topology is registered, so that it
			// is certainly declared before Ready, on the run loop's dial.
			p, err := faultproxy.New(b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			p.Refuse(true)
			s, rec := testkit.Start(t, conn.Options{URLs: []string{b.URLVia(p.Addr())}})
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if _, err := s.DeclareTopology(ctx, conn.Topology{Exchanges: []conn.Exchange{tt.exchange}}); err != nil {
				t.Fatalf("DeclareTopology before Ready = %v, want it registered", err)
			}
			p.Refuse(false)

			begin := time.Now()
			select {
			case <-s.Done():
			case <-ctx.Done():
				t.Fatalf("still running %v after the refusal; last error %v; events: %s",
					stopTimeout, s.Err(), testkit.Describe(rec.Snapshot()))
			}
			t.Logf("stopped in %v", time.Since(begin).Round(time.Millisecond))
			serr := s.Err()
			if !reconnect.IsPermanent(serr) {
				t.Errorf("Err() = %v, want a permanent error", serr)
			}
			for _, w := range tt.want {
				if serr == nil || !strings.Contains(serr.Error(), w) {
					t.Errorf("Err() = %v, want it to say %s", serr, w)
				}
			}
			werr := s.WaitReady(ctx)
			t.Logf("WaitReady: %v", werr)
			if !errors.Is(werr, conn.ErrClosed) {
				t.Errorf("WaitReady = %v, want ErrClosed", werr)
			}
			dials := s.Stats().Dials
			time.Sleep(settle) // watching for dials that must not happen
			if again := s.Stats().Dials; again != dials {
				t.Errorf("dialed %d more times after stopping", again-dials)
			}
		})
	}
}

// declareRaw declares exchange name of kind through amqp091-go alone.
func declareRaw(t *testing.T, url, name, kind string) {
	t.Helper()
	c, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(name, kind, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer c.Close()
		if ch, err := c.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
		}
	})
}
