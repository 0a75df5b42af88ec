package main

import (
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
)

func demoEv(k conn.EventKind, at time.Time) conn.Event {
	return conn.Event{Kind: k, Time: at}
}

func demoStateEv(s conn.State, at time.Time) conn.Event {
	return conn.Event{Kind: conn.EventStateChanged, State: s, Time: at}
}

// readyDemoTracker returns a tracker whose two sides are Ready at t0.
func readyDemoTracker(t0 time.Time) *demoTracker {
	trk := newDemoTracker()
	trk.observe(demoPublisher, demoStateEv(conn.Ready, t0))
	trk.observe(demoConsumer, demoStateEv(conn.Ready, t0))
	return trk
}

func TestTrackerMeasuresFaults(t *testing.T) {
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name       string
		kind       demoFault
		events     []conn.Event // publisher's, after begin at t0+1s
		wantBy     conn.EventKind
		wantDetect time.Duration
		wantOutage time.Duration
		wantLosses int
		wantLast   time.Duration // the last outage, for the status line
	}{
		{"partition", demoFaultPartition, []conn.Event{
			demoEv(conn.EventDeadPeer, ms(1900)),
			demoEv(conn.EventConnectionLost, ms(1905)),
			demoStateEv(conn.Reconnecting, ms(1906)),
			demoEv(conn.EventUnblocked, ms(1907)), // lose() clears the flag; not a recovery
			demoStateEv(conn.Ready, ms(4100)),
		}, conn.EventDeadPeer, 900 * time.Millisecond, 2195 * time.Millisecond, 1, 2195 * time.Millisecond},
		{"forced close", demoFaultClose, []conn.Event{
			demoEv(conn.EventConnectionLost, ms(1800)),
			demoStateEv(conn.Reconnecting, ms(1801)),
			demoStateEv(conn.Ready, ms(1830)),
		}, conn.EventConnectionLost, 800 * time.Millisecond, 30 * time.Millisecond, 1, 30 * time.Millisecond},
		{"alarm", demoFaultAlarm, []conn.Event{
			demoEv(conn.EventBlocked, ms(2500)),
			demoEv(conn.EventUnblocked, ms(5500)),
		}, conn.EventBlocked, 1500 * time.Millisecond, 3 * time.Second, 1, 3 * time.Second},
		{"alarm with a stalled broker: outages summed", demoFaultAlarm, []conn.Event{
			demoEv(conn.EventBlocked, ms(2500)),
			demoEv(conn.EventDeadPeer, ms(3000)),
			demoEv(conn.EventConnectionLost, ms(3001)),
			demoStateEv(conn.Reconnecting, ms(3002)),
			demoEv(conn.EventUnblocked, ms(3003)),
			demoStateEv(conn.Ready, ms(3200)),
			demoEv(conn.EventBlocked, ms(3210)),
			demoEv(conn.EventUnblocked, ms(3500)),
		}, conn.EventBlocked, 1500 * time.Millisecond, 990 * time.Millisecond, 2, 290 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trk := readyDemoTracker(t0)
			trk.begin(tt.kind, ms(1000))
			for _, e := range tt.events {
				trk.observe(demoPublisher, e)
			}
			recs := trk.faults()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			pub := r.Sides[demoPublisher]
			if pub.DetectedBy != tt.wantBy {
				t.Errorf("detected by %v, want %v", pub.DetectedBy, tt.wantBy)
			}
			if d, ok := r.detect(demoPublisher); !ok || d != tt.wantDetect {
				t.Errorf("detect %v (%v), want %v", d, ok, tt.wantDetect)
			}
			if d, ok := pub.outage(); !ok || d != tt.wantOutage || pub.Losses != tt.wantLosses {
				t.Errorf("outage %v (%v) in %d losses, want %v in %d", d, ok, pub.Losses, tt.wantOutage, tt.wantLosses)
			}
			if _, ok := r.Sides[demoConsumer].outage(); ok {
				t.Error("consumer outage recorded without consumer events")
			}
			if got := trk.side(demoPublisher); got.lastOutage != tt.wantLast || got.lastOutageFault != tt.kind.String() {
				t.Errorf("last outage %v (%s), want %v (%v)", got.lastOutage, got.lastOutageFault, tt.wantLast, tt.kind)
			}
		})
	}
}

func TestTrackerIgnoresEventsBeforeTheFault(t *testing.T) {
	t0 := time.Now()
	trk := readyDemoTracker(t0)
	trk.begin(demoFaultClose, t0.Add(time.Second))
	trk.observe(demoPublisher, demoEv(conn.EventConnectionLost, t0.Add(500*time.Millisecond)))
	if r := trk.faults()[0]; !r.Sides[demoPublisher].DetectedAt.IsZero() {
		t.Error("an event from before the injection counted as its detection")
	}
}

func TestTrackerNotes(t *testing.T) {
	t0 := time.Now()
	trk := readyDemoTracker(t0)
	trk.begin(demoFaultClose, t0)
	n := trk.observe(demoConsumer, demoEv(conn.EventConnectionLost, t0.Add(10*time.Millisecond)))
	if !n.detected || n.detectAfter != 10*time.Millisecond || n.recovered {
		t.Errorf("loss note %+v", n)
	}
	if n := trk.observe(demoConsumer, demoStateEv(conn.Reconnecting, t0.Add(11*time.Millisecond))); n != (demoNote{}) {
		t.Errorf("reconnecting note %+v", n)
	}
	n = trk.observe(demoConsumer, demoStateEv(conn.Ready, t0.Add(50*time.Millisecond)))
	if n.detected || !n.recovered || n.outage != 40*time.Millisecond {
		t.Errorf("ready note %+v", n)
	}
}

func TestTrackerWaitHealthy(t *testing.T) {
	t0 := time.Now()
	trk := readyDemoTracker(t0)
	trk.observe(demoPublisher, demoEv(conn.EventBlocked, t0))
	ctx, cancel := context.WithTimeout(context.Background(), demoShortTimeout)
	defer cancel()
	if trk.waitHealthy(ctx) {
		t.Fatal("healthy while the publisher is blocked")
	}
	done := make(chan bool)
	go func() { done <- trk.waitHealthy(context.Background()) }()
	trk.observe(demoPublisher, demoEv(conn.EventUnblocked, t0))
	if !<-done {
		t.Error("waitHealthy did not report healthy")
	}
}

func TestTrackerWaitHealthyGivesUpOnAStoppedSupervisor(t *testing.T) {
	trk := readyDemoTracker(time.Now())
	trk.observe(demoConsumer, demoStateEv(conn.Closed, time.Now()))
	if trk.waitHealthy(context.Background()) {
		t.Error("healthy with a Closed supervisor")
	}
}
