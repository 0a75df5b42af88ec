package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// demoTotals is the end-of-run accounting the report prints.
type demoTotals struct {
	demoLedgerTotals
	// Republished is the publisher supervisor's Stats().Republished.
	Republished uint64
	// Reconnects are Stats().Reconnects of each supervisor.
	Reconnects [demoNumSides]uint64
	// Drained tells whether every confirmed message arrived before the
	// drain timeout.
	Drained bool
	// Unverified counts confirmed messages not consumed when Ctrl-C cut the
	// drain short: they are not known to be lost (Lost is 0 then), and they
	// stay in Queue.
	Unverified int
	// Queue is the demo's queue.
	Queue string
	// Elapsed is how long publishing ran.
	Elapsed time.Duration
}

// writeDemoFaultTable prints one row per injected fault. start is when
// publishing started, for the "injected" offsets.
func writeDemoFaultTable(w io.Writer, start time.Time, recs []demoFaultRecord) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no faults injected")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tinjected\tcall\tdetected by\tdetect\toutage\tconsumer outage\trepublished")
	for _, r := range recs {
		row := []string{r.Kind.String(), demoOffsetText(start, r.Start), demoCallText(r)}
		if errors.Is(r.Err, errDemoInterrupted) {
			row = append(row, "interrupted by Ctrl-C")
			fmt.Fprintln(tw, strings.Join(row, "\t"))
			continue
		}
		if r.Err != nil {
			row = append(row, "not injected: "+demoFirstLine(r.Err.Error()))
			fmt.Fprintln(tw, strings.Join(row, "\t"))
			continue
		}
		pub := r.Sides[demoPublisher]
		by := "not detected"
		if !pub.DetectedAt.IsZero() {
			by = pub.DetectedBy.String()
		}
		row = append(row, by, demoDurText(r.detect(demoPublisher)), demoOutageText(pub),
			demoOutageText(r.Sides[demoConsumer]), fmt.Sprint(r.Republished))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, `
  detect:  from the start of the injection to warren's first event about it. "call" is how long
           rabbitmqctl took (most of it starting an Erlang VM); detect < call means warren
           reacted before the tool even returned. The partition is a fault proxy flip: exact.
  outage:  from ConnectionLost (or Blocked) to Ready and unblocked again, summed when the fault
           caused several; it cannot end before the fault is cleared (proxy healed, alarm off,
           application started).`)
}

// demoCallText is how long a rabbitmqctl injection took; the proxy flip is instant.
func demoCallText(r demoFaultRecord) string {
	refused := r.Err != nil && !errors.Is(r.Err, errDemoInterrupted)
	if r.Kind == demoFaultPartition || r.Injected.IsZero() || refused {
		return "-"
	}
	return demoDur(r.Injected.Sub(r.Start))
}

// demoOutageText is a side's summed outage, with the count when the fault
// caused more than one.
func demoOutageText(r demoSideRecord) string {
	d, ok := r.outage()
	if !ok {
		return "-"
	}
	if r.Losses > 1 {
		return fmt.Sprintf("%s (%d losses)", demoDur(d), r.Losses)
	}
	return demoDur(d)
}

func demoDurText(d time.Duration, ok bool) string {
	if !ok {
		return "-"
	}
	return demoDur(d)
}

func demoFirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// writeDemoTotals prints the loss accounting, ending with the verdict line.
func writeDemoTotals(w io.Writer, t demoTotals) {
	fmt.Fprintf(w, "messages   published %d, confirmed %d, failed %d (reported to the publisher), unsettled %d\n",
		t.Published, t.Confirmed, t.Failed, t.Unsettled)
	reasons := make([]string, 0, len(t.FailReasons))
	for reason := range t.FailReasons {
		reasons = append(reasons, reason)
	}
	sort.Strings(reasons)
	for _, reason := range reasons {
		fmt.Fprintf(w, "           %d failed: %s\n", t.FailReasons[reason], reason)
	}
	fmt.Fprintf(w, "consumer   received %d distinct, %d duplicates (at least once: redelivered or republished)\n",
		t.Received, t.Duplicates)
	if t.Foreign > 0 {
		fmt.Fprintf(w, "           %d deliveries that were not the demo's\n", t.Foreign)
	}
	fmt.Fprintf(w, "recovery   %d republished after lost confirms; reconnects: publisher %d, consumer %d; publishing ran %s\n",
		t.Republished, t.Reconnects[demoPublisher], t.Reconnects[demoConsumer], demoDur(t.Elapsed))
	if t.Unverified > 0 {
		fmt.Fprintf(w, "RESULT     not verified: interrupted before %d confirmed messages were consumed (left in queue %s)\n",
			t.Unverified, t.Queue)
		return
	}
	if !t.Drained {
		fmt.Fprintln(w, "           the consumer did not receive every confirmed message before the drain timeout")
	}
	if t.Lost == 0 {
		fmt.Fprintf(w, "RESULT     0 confirmed messages lost (%d confirmed, all %d consumed)\n", t.Confirmed, t.Confirmed)
		return
	}
	fmt.Fprintf(w, "RESULT     %d CONFIRMED MESSAGES LOST: confirmed by the broker, never consumed; first: %s\n",
		t.Lost, strings.Join(t.LostIDs, ", "))
}
