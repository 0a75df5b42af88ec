package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
)

func TestWriteFaultTable(t *testing.T) {
	start := time.Now()
	at := func(d time.Duration) time.Time { return start.Add(d) }
	s := time.Second
	lost := func(from, to time.Duration, n int) demoSideRecord {
		return demoSideRecord{LostAt: at(from), BackAt: at(to), Outage: to - from, Losses: n}
	}
	withDetect := func(r demoSideRecord, d time.Duration, by conn.EventKind) demoSideRecord {
		r.DetectedAt, r.DetectedBy = at(d), by
		return r
	}
	recs := []demoFaultRecord{
		{Kind: demoFaultClose, Start: at(2 * s), Injected: at(2*s + 900*time.Millisecond), Republished: 3,
			Sides: [demoNumSides]demoSideRecord{
				withDetect(lost(2850*time.Millisecond, 2870*time.Millisecond, 1), 2850*time.Millisecond, conn.EventConnectionLost),
				lost(2851*time.Millisecond, 2890*time.Millisecond, 1),
			}},
		{Kind: demoFaultPartition, Start: at(12 * s), Injected: at(12 * s), Republished: 250,
			Sides: [demoNumSides]demoSideRecord{
				withDetect(lost(12931*time.Millisecond, 15010*time.Millisecond, 1), 12930*time.Millisecond, conn.EventDeadPeer),
			}},
		{Kind: demoFaultStop, Start: at(20 * s), Injected: at(22 * s), Republished: 256,
			Sides: [demoNumSides]demoSideRecord{
				withDetect(lost(21*s, 28*s, 2), 21*s, conn.EventDeadPeer),
				{Losses: 1, LostAt: at(21 * s), lostSince: at(21 * s)}, // never back
			}},
		{Kind: demoFaultStop, Start: at(32 * s), Injected: at(33 * s), Err: errors.New("broker: fault not supported here: StopApp\nmore")},
		{Kind: demoFaultAlarm, Start: at(40 * s), Injected: at(40*s + 300*time.Millisecond), Err: fmt.Errorf("%w: %w", errDemoInterrupted, context.Canceled)},
	}
	var out bytes.Buffer
	writeDemoFaultTable(&out, start, recs)
	got := out.String()
	t.Logf("\n%s", got)
	wantRows := [][]string{
		{"fault", "injected", "call", "detected by", "detect", "outage", "consumer outage", "republished"},
		{"close", "+2.0s", "900ms", "ConnectionLost", "850ms", "20ms", "39ms", "3"},
		{"partition", "+12.0s", "-", "DeadPeer", "930ms", "2.08s", "-", "250"},
		{"stop", "+20.0s", "2.00s", "DeadPeer", "1.00s", "7.00s (2 losses)", "-", "256"},
		{"stop", "+32.0s", "-", "not injected: broker: fault not supported here: StopApp"},
		{"alarm", "+40.0s", "300ms", "interrupted by Ctrl-C"},
	}
	lines := strings.Split(got, "\n")
	for i, row := range wantRows {
		fields := demoSplitColumns(lines[i])
		if strings.Join(fields, "|") != strings.Join(row, "|") {
			t.Errorf("row %d = %q, want %q", i, fields, row)
		}
	}
	if strings.Contains(got, "more") {
		t.Error("the error's second line made it into the table")
	}
}

// demoSplitColumns splits a tabwriter line on runs of two or more spaces.
func demoSplitColumns(line string) []string {
	var fields []string
	for _, f := range strings.Split(line, "  ") {
		if f = strings.TrimSpace(f); f != "" {
			fields = append(fields, f)
		}
	}
	return fields
}

func TestWriteFaultTableWithoutFaults(t *testing.T) {
	var out bytes.Buffer
	writeDemoFaultTable(&out, time.Now(), nil)
	if got := out.String(); got != "no faults injected\n" {
		t.Errorf("got %q", got)
	}
}

func TestWriteTotals(t *testing.T) {
	tests := []struct {
		name   string
		totals demoTotals
		want   []string
		reject []string
	}{
		{"nothing lost", demoTotals{
			demoLedgerTotals: demoLedgerTotals{Published: 10, Confirmed: 10, Received: 10, Duplicates: 2},
			Republished:      4, Reconnects: [demoNumSides]uint64{3, 2}, Drained: true, Elapsed: 40 * time.Second,
		}, []string{
			"published 10, confirmed 10, failed 0",
			"received 10 distinct, 2 duplicates",
			"4 republished after lost confirms; reconnects: publisher 3, consumer 2; publishing ran 40.00s",
			"RESULT     0 confirmed messages lost (10 confirmed, all 10 consumed)",
		}, []string{"LOST", "drain timeout"}},
		{"lost and failed", demoTotals{
			demoLedgerTotals: demoLedgerTotals{Published: 10, Confirmed: 8, Failed: 2, Received: 7, Lost: 1,
				LostIDs: []string{"demo-7"}, FailReasons: map[string]int{"warren: the broker nacked the message": 2}},
		}, []string{
			"2 failed: warren: the broker nacked the message",
			"drain timeout",
			"RESULT     1 CONFIRMED MESSAGES LOST: confirmed by the broker, never consumed; first: demo-7",
		}, []string{"0 confirmed messages lost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			writeDemoTotals(&out, tt.totals)
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
			lines := strings.Split(strings.TrimSpace(got), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], "RESULT") {
				t.Errorf("the verdict is not the last line:\n%s", got)
			}
		})
	}
}
