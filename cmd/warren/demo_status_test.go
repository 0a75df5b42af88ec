package main

import (
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
)

func TestStatusViewString(t *testing.T) {
	tests := []struct {
		name string
		v    demoStatusView
		want string
	}{
		{"steady", demoStatusView{Elapsed: 12340 * time.Millisecond, State: conn.Ready, Published: 2460, Confirmed: 2455, Consumed: 2450},
			" +12.3s  Ready         published 2460  confirmed 2455  consumed 2450  reconnects 0"},
		{"after an outage, during a fault", demoStatusView{Elapsed: 31 * time.Second, State: conn.Ready, Blocked: true,
			Published: 10, Confirmed: 9, Consumed: 8, Reconnects: 4, LastOutage: 2310 * time.Millisecond,
			LastOutageFault: "partition", Fault: "alarm: held 3s"},
			" +31.0s  Ready,blocked  published 10  confirmed 9  consumed 8  reconnects 4  last outage 2.31s (partition)  [alarm: held 3s]"},
		{"outage outside a fault", demoStatusView{State: conn.Reconnecting, LastOutage: 40 * time.Millisecond},
			"  +0.0s  Reconnecting  published 0  confirmed 0  consumed 0  reconnects 0  last outage 40ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.String(); got != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestStatusViewCompactFitsATerminal(t *testing.T) {
	v := demoStatusView{Elapsed: 31 * time.Second, State: conn.Reconnecting, Published: 8000, Confirmed: 7999, Consumed: 7998,
		Reconnects: 6, LastOutage: 2310 * time.Millisecond, LastOutageFault: "partition", Fault: "stop: start_app"}
	got := v.Compact()
	want := "+31.0s Reconnecting pub 8000  conf 7999  cons 7998  reconn 6  [stop: start_app]  outage 2.31s"
	if got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	// Without a fault running, a typical line fits 80 columns whole.
	v.Fault = ""
	if n := len(v.Compact()); n >= demoDefaultWidth {
		t.Errorf("compact status is %d columns: %q", n, v.Compact())
	}
}

func TestFmtDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0ms"},
		{1400 * time.Microsecond, "1ms"},
		{930 * time.Millisecond, "930ms"},
		{999600 * time.Microsecond, "1.00s"},
		{time.Second, "1.00s"},
		{2314 * time.Millisecond, "2.31s"},
		{75 * time.Second, "75.00s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := demoDur(tt.d); got != tt.want {
				t.Errorf("fmtDur(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}
