package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/warrenmq/warren/conn"
)

// demoStatusView is what the live status line shows.
type demoStatusView struct {
	Elapsed    time.Duration
	State      conn.State // the publisher's
	Blocked    bool
	Published  int
	Confirmed  int
	Consumed   int
	Reconnects uint64 // both supervisors
	// LastOutage is the publisher's last finished outage (0: none yet),
	// during LastOutageFault ("" when no fault was running).
	LastOutage      time.Duration
	LastOutageFault string
	// Fault is the fault being injected or recovered from, "" if none.
	Fault string
}

// String renders the status line in words, for outputs that are not a
// terminal (a log, CI): one line every couple of seconds, width no concern.
func (v demoStatusView) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s  %-12s", demoElapsedText(v.Elapsed), demoStateText(v.State, v.Blocked))
	fmt.Fprintf(&b, "  published %d  confirmed %d  consumed %d  reconnects %d", v.Published, v.Confirmed, v.Consumed, v.Reconnects)
	if v.LastOutage > 0 {
		fmt.Fprintf(&b, "  last outage %s", demoDur(v.LastOutage))
		if v.LastOutageFault != "" {
			fmt.Fprintf(&b, " (%s)", v.LastOutageFault)
		}
	}
	if v.Fault != "" {
		fmt.Fprintf(&b, "  [%s]", v.Fault)
	}
	return b.String()
}

// Compact renders the status line for a terminal, where it must fit one
// row: short labels, the running fault before the last outage, whose fault
// the log lines tell; the console cuts what does not fit.
func (v demoStatusView) Compact() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s %-12s pub %d  conf %d  cons %d  reconn %d", demoElapsedText(v.Elapsed), demoStateText(v.State, v.Blocked),
		v.Published, v.Confirmed, v.Consumed, v.Reconnects)
	if v.Fault != "" {
		fmt.Fprintf(&b, "  [%s]", v.Fault)
	}
	if v.LastOutage > 0 {
		fmt.Fprintf(&b, "  outage %s", demoDur(v.LastOutage))
	}
	return b.String()
}

func demoElapsedText(d time.Duration) string {
	return fmt.Sprintf("+%.1fs", d.Seconds())
}

func demoStateText(s conn.State, blocked bool) string {
	if blocked {
		return s.String() + ",blocked"
	}
	return s.String()
}

// demoDur formats a measured duration for people: milliseconds below a
// second, else seconds with two decimals.
func demoDur(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
