package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// demoShortTimeout bounds waits for things that must not happen.
const demoShortTimeout = 50 * time.Millisecond

func TestLedgerTotals(t *testing.T) {
	nacked := errors.New("nacked")
	tests := []struct {
		name string
		run  func(l *demoLedger)
		want demoLedgerTotals
	}{
		{"confirmed then received", func(l *demoLedger) {
			l.publish(0)
			l.settle(0, nil)
			l.receive(demoMsgID(0))
		}, demoLedgerTotals{Published: 1, Confirmed: 1, Received: 1}},
		{"received before its confirm", func(l *demoLedger) {
			l.publish(0)
			l.receive(demoMsgID(0))
			l.settle(0, nil)
		}, demoLedgerTotals{Published: 1, Confirmed: 1, Received: 1}},
		{"confirmed, never received", func(l *demoLedger) {
			l.publish(0)
			l.publish(1)
			l.settle(0, nil)
			l.settle(1, nil)
			l.receive(demoMsgID(0))
		}, demoLedgerTotals{Published: 2, Confirmed: 2, Received: 1, Lost: 1, LostIDs: []string{demoMsgID(1)}}},
		{"duplicates counted once", func(l *demoLedger) {
			l.publish(0)
			l.settle(0, nil)
			l.receive(demoMsgID(0))
			l.receive(demoMsgID(0))
			l.receive(demoMsgID(0))
		}, demoLedgerTotals{Published: 1, Confirmed: 1, Received: 1, Duplicates: 2}},
		{"failed is reported, not lost", func(l *demoLedger) {
			l.publish(0)
			l.settle(0, nacked)
			l.settle(0, nil) // settles once
		}, demoLedgerTotals{Published: 1, Failed: 1, FailReasons: map[string]int{"nacked": 1}}},
		{"unsettled", func(l *demoLedger) {
			l.publish(0)
			l.publish(1)
			l.settle(1, nil)
			l.receive(demoMsgID(1))
		}, demoLedgerTotals{Published: 2, Confirmed: 1, Unsettled: 1, Received: 1}},
		{"foreign message", func(l *demoLedger) {
			l.receive("someone-else-7")
		}, demoLedgerTotals{Foreign: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newDemoLedger()
			tt.run(l)
			got := l.totals()
			if tt.want.FailReasons == nil {
				tt.want.FailReasons = map[string]int{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("totals\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestLedgerBoundsFailReasons(t *testing.T) {
	l := newDemoLedger()
	for i := 0; i < 3*demoMaxFailReasons; i++ {
		l.publish(i)
		l.settle(i, fmt.Errorf("error %d", i))
	}
	got := l.totals()
	if len(got.FailReasons) != demoMaxFailReasons+1 || got.FailReasons[demoOtherFailures] != 2*demoMaxFailReasons {
		t.Errorf("fail reasons %v", got.FailReasons)
	}
}

func TestLedgerWaitDrained(t *testing.T) {
	l := newDemoLedger()
	l.publish(0)
	l.settle(0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), demoShortTimeout)
	defer cancel()
	if l.waitDrained(ctx) {
		t.Fatal("drained with a confirmed message not received")
	}
	done := make(chan bool)
	go func() { done <- l.waitDrained(context.Background()) }()
	l.receive(demoMsgID(0))
	if !<-done {
		t.Error("waitDrained did not report drained")
	}
}

func TestSeqOf(t *testing.T) {
	tests := []struct {
		id   string
		want int
		ok   bool
	}{
		{demoMsgID(0), 0, true},
		{demoMsgID(12345), 12345, true},
		{"demo-", 0, false},
		{"demo--1", 0, false},
		{"demo-x", 0, false},
		{"other-1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, ok := demoSeqOf(tt.id)
			if got != tt.want || ok != tt.ok {
				t.Errorf("seqOf(%q) = %d, %v; want %d, %v", tt.id, got, ok, tt.want, tt.ok)
			}
		})
	}
}
