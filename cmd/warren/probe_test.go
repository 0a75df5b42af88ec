package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
)

func TestProbeExitCodes(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const user, pass = "warren-probe-user", "probe-secret-pw"
	if err := b.Faults.AddUser(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	defer b.Faults.DeleteUser(ctx, user)
	if err := b.Faults.SetPermissions(ctx, "/", user); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := "amqp://" + user + ":" + pass + "@" + l.Addr().String() + "/"
	l.Close()

	tests := []struct {
		name     string
		url      string
		wantExit int
		wantText string
	}{
		{"healthy broker", b.URLWith(user, pass, "/"), exitHealthy, "healthy"},
		{"wrong password", b.URLWith(user, "wrong-"+pass, "/"), exitPermanent, "permanent"},
		{"unknown vhost", b.URLWith(user, pass, "no-such-vhost"), exitPermanent, "permanent"},
		{"closed port", closedPort, exitTransient, "transient"},
	}
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			name := tt.name
			args := []string{"probe", "-timeout", "10s", tt.url}
			if asJSON {
				name += "/json"
				args = []string{"probe", "-json", "-timeout", "10s", tt.url}
			}
			t.Run(name, func(t *testing.T) {
				var out, errOut bytes.Buffer
				exit := run(args, &out, &errOut)
				t.Logf("exit %d\n%s%s", exit, out.String(), errOut.String())
				if exit != tt.wantExit {
					t.Errorf("exit code %d, want %d", exit, tt.wantExit)
				}
				if strings.Contains(out.String()+errOut.String(), pass) {
					t.Errorf("output shows the password")
				}
				if !strings.Contains(out.String(), tt.wantText) {
					t.Errorf("output does not say %q", tt.wantText)
				}
				if asJSON {
					var r probeReport
					if err := json.Unmarshal(out.Bytes(), &r); err != nil {
						t.Fatalf("-json output does not parse: %v", err)
					}
					if r.Healthy != (tt.wantExit == exitHealthy) {
						t.Errorf("json healthy = %v", r.Healthy)
					}
					if r.Healthy && (r.Product != "RabbitMQ" || r.RoundTrip <= 0 || r.Heartbeat <= 0) {
						t.Errorf("healthy report lacks broker details: %+v", r)
					}
				}
			})
		}
	}
}
