package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
)

func TestDemoMainRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantExit int
		wantErr  string
	}{
		{"unknown fault", []string{"demo", "-faults", "meteor"}, demoExitUsage, `unknown fault "meteor"`},
		{"bad rate", []string{"demo", "-rate", "-3"}, demoExitUsage, "-rate must be"},
		{"help", []string{"demo", "-h"}, demoExitOK, "-duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if exit := run(tt.args, &out, &errOut); exit != tt.wantExit {
				t.Errorf("exit %d, want %d", exit, tt.wantExit)
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q does not say %q", errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestDemoExitCode(t *testing.T) {
	tests := []struct {
		name string
		res  demoResult
		want int
	}{
		{"clean", demoResult{}, demoExitOK},
		{"lost", demoResult{totals: demoTotals{demoLedgerTotals: demoLedgerTotals{Lost: 1}}}, demoExitFailed},
		{"lost beats interrupted", demoResult{interrupted: true, totals: demoTotals{demoLedgerTotals: demoLedgerTotals{Lost: 1}}}, demoExitFailed},
		{"could not run", demoResult{err: errors.New("no broker")}, demoExitFailed},
		{"interrupted", demoResult{interrupted: true}, demoExitInterrupted},
		{"failed messages were reported, not lost", demoResult{totals: demoTotals{demoLedgerTotals: demoLedgerTotals{Failed: 3}}}, demoExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.exitCode(); got != tt.want {
				t.Errorf("exit code %d, want %d", got, tt.want)
			}
		})
	}
}

func TestWriteReport(t *testing.T) {
	tests := []struct {
		name   string
		res    demoResult
		want   []string
		reject []string
	}{
		{"setup failed", demoResult{err: errors.New("add user: boom\ndetails"), warnings: []string{"w1"}},
			[]string{"warning: w1", "warren demo: add user: boom; details"}, []string{"RESULT", "fault"}},
		{"interrupted run", demoResult{start: time.Now(), interrupted: true},
			[]string{"interrupted", "no faults injected", "RESULT     0 confirmed messages lost"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			writeDemoReport(&out, tt.res)
			got := out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, r := range tt.reject {
				if strings.Contains(got, r) {
					t.Errorf("unexpected %q in\n%s", r, got)
				}
			}
		})
	}
}

func TestReportNoBroker(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   []string
		reject []string
	}{
		{"nothing found", fmt.Errorf("%w (AMQP_URL is not set; no Docker; no rabbitmq-server found)\nadvice for the tests", broker.ErrNoBroker),
			[]string{"no rabbitmq-server found", "apt-get install rabbitmq-server", "brew install rabbitmq", "AMQP_URL="},
			[]string{"advice for the tests"}},
		{"broker found but broken", errors.New("broker: node failed to start: epmd"),
			[]string{"node failed to start"}, []string{"apt-get"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			reportNoBroker(&out, tt.err)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("missing %q in\n%s", w, out.String())
				}
			}
			for _, r := range tt.reject {
				if strings.Contains(out.String(), r) {
					t.Errorf("unexpected %q in\n%s", r, out.String())
				}
			}
		})
	}
}

// TestDemoMainViaAMQPURL runs the command end to end on a broker named by
// AMQP_URL without rabbitmqctl access: the demo must fall back to the URL's
// user, say which faults it cannot inject, and still account for every
// message.
func TestDemoMainViaAMQPURL(t *testing.T) {
	b := broker.Shared(t)
	t.Setenv("AMQP_URL", b.URL)
	t.Setenv("RABBITMQ_NODENAME", "")
	t.Setenv("AMQP_MGMT_URL", "")
	var out, errOut bytes.Buffer
	exit := run([]string{"demo", "-duration", "4s", "-rate", "100", "-faults", "partition,close"}, &out, &errOut)
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, out.String(), errOut.String())
	if exit != demoExitOK {
		t.Errorf("exit %d, want %d", exit, demoExitOK)
	}
	got := out.String()
	for _, want := range []string{
		"using AMQP_URL",
		"connecting as the URL's user",
		"close      ", "not injected: broker: fault not supported here",
		"DeadPeer",
		"RESULT     0 confirmed messages lost",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	u, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	if pass, _ := u.User.Password(); pass != "" && strings.Contains(got+errOut.String(), ":"+pass+"@") {
		t.Error("output shows the broker's password")
	}
}
