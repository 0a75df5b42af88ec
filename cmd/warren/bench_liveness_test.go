package main

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestLiveness(t *testing.T) {
	var out bytes.Buffer
	l := newBenchLiveness(newBenchReporter(&out))
	t0 := time.Now()
	l.lost(t0, errors.New("before start"), false) // the client's own set-up: ignored
	l.up(t0)
	l.start()
	l.up(t0) // already up: ignored
	l.lost(t0, errors.New("forced"), false)
	l.lost(t0.Add(time.Millisecond), errors.New("again"), true) // same loss, another signal
	l.up(t0.Add(30 * time.Millisecond))
	l.lost(t0.Add(time.Second), nil, true)

	select {
	case <-l.firstLoss():
	default:
		t.Error("firstLoss not closed after a loss")
	}
	if n := l.losses(); n != 2 {
		t.Errorf("losses = %d, want 2", n)
	}
	msgs := make(chan benchMsg, 16)
	readBenchMsgs(&out, msgs, func(s string) { t.Errorf("junk %q", s) })
	var types []string
	var outage int64
	for m := range msgs {
		types = append(types, m.Type)
		if m.Type == wmUp {
			outage = m.OutageNS
		}
	}
	want := []string{wmReady, wmLost, wmUp, wmLost}
	if len(types) != len(want) {
		t.Fatalf("lines %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("lines %v, want %v", types, want)
		}
	}
	if outage != int64(30*time.Millisecond) {
		t.Errorf("outage %v, want 30ms", time.Duration(outage))
	}
}
