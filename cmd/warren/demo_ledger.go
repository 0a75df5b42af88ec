package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
)

// Message states in the ledger, as bits.
const (
	demoMsgPublished uint8 = 1 << iota // accepted by PublishAsync
	demoMsgConfirmed                   // the broker acked it
	demoMsgFailed                      // its Confirmation reported an error
	demoMsgReceived                    // the consumer handled it at least once
)

// demoMaxFailReasons bounds the distinct failure texts the ledger keeps.
const demoMaxFailReasons = 8

// demoOtherFailures counts failures beyond demoMaxFailReasons distinct texts.
const demoOtherFailures = "(other errors)"

// demoMsgIDPrefix starts every demo message id; the rest is its sequence number.
const demoMsgIDPrefix = "demo-"

// demoLedger is the demo's loss accounting: one state byte per message sequence
// number, so the bookkeeping stays small even for long runs at high rates.
// A message is lost when the broker confirmed it and the consumer never
// received it.
type demoLedger struct {
	mu sync.Mutex
	st []uint8
	// Counts kept as the states change, so a snapshot is O(1).
	published, confirmed, failed, received, duplicates, foreign int
	// missing counts confirmed messages not received yet; changed is
	// closed and replaced each time it drops to 0.
	missing int
	changed chan struct{}
	// failReasons counts Confirmation errors by text; at most
	// demoMaxFailReasons texts, the rest under demoOtherFailures.
	failReasons map[string]int
}

func newDemoLedger() *demoLedger {
	return &demoLedger{changed: make(chan struct{}), failReasons: make(map[string]int)}
}

// demoMsgID returns the MessageId of message seq.
func demoMsgID(seq int) string { return demoMsgIDPrefix + strconv.Itoa(seq) }

// demoSeqOf parses a MessageId made by demoMsgID.
func demoSeqOf(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, demoMsgIDPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// growLocked makes room for seq. Caller must hold l.mu.
func (l *demoLedger) growLocked(seq int) {
	for len(l.st) <= seq {
		l.st = append(l.st, 0)
	}
}

// publish records that message seq was accepted by the publisher.
func (l *demoLedger) publish(seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.growLocked(seq)
	if l.st[seq]&demoMsgPublished == 0 {
		l.st[seq] |= demoMsgPublished
		l.published++
	}
}

// settle records message seq's outcome: err nil means the broker confirmed it.
func (l *demoLedger) settle(seq int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.growLocked(seq)
	s := l.st[seq]
	if s&(demoMsgConfirmed|demoMsgFailed) != 0 {
		return
	}
	if err != nil {
		l.st[seq] = s | demoMsgFailed
		l.failed++
		reason := err.Error()
		if _, seen := l.failReasons[reason]; !seen && len(l.failReasons) >= demoMaxFailReasons {
			reason = demoOtherFailures
		}
		l.failReasons[reason]++
		return
	}
	l.st[seq] = s | demoMsgConfirmed
	l.confirmed++
	if s&demoMsgReceived == 0 {
		l.missing++
	}
}

// receive records a delivery of the message with id; it reports whether it
// was a duplicate.
func (l *demoLedger) receive(id string) (dup bool) {
	seq, ok := demoSeqOf(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.foreign++
		return false
	}
	l.growLocked(seq)
	s := l.st[seq]
	if s&demoMsgReceived != 0 {
		l.duplicates++
		return true
	}
	l.st[seq] = s | demoMsgReceived
	l.received++
	if s&demoMsgConfirmed != 0 {
		l.missing--
		if l.missing == 0 {
			close(l.changed)
			l.changed = make(chan struct{})
		}
	}
	return false
}

// waitDrained waits until every confirmed message has been received, bounded
// by ctx; it reports whether that happened.
func (l *demoLedger) waitDrained(ctx context.Context) bool {
	for {
		l.mu.Lock()
		missing, changed := l.missing, l.changed
		l.mu.Unlock()
		if missing == 0 {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// progress returns the counts the status line shows.
func (l *demoLedger) progress() (published, confirmed, received int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.published, l.confirmed, l.received
}

// demoLedgerTotals is a snapshot of the ledger.
type demoLedgerTotals struct {
	Published, Confirmed, Failed, Unsettled int
	Received, Duplicates, Foreign           int
	// Lost counts messages the broker confirmed that were never received.
	Lost int
	// FailReasons are the distinct Confirmation errors with their counts.
	FailReasons map[string]int
	// LostIDs lists the first few lost messages.
	LostIDs []string
}

// demoMaxLostIDs bounds how many lost message ids a snapshot lists.
const demoMaxLostIDs = 10

func (l *demoLedger) totals() demoLedgerTotals {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := demoLedgerTotals{
		Published:   l.published,
		Confirmed:   l.confirmed,
		Failed:      l.failed,
		Unsettled:   l.published - l.confirmed - l.failed,
		Received:    l.received,
		Duplicates:  l.duplicates,
		Foreign:     l.foreign,
		Lost:        l.missing,
		FailReasons: make(map[string]int, len(l.failReasons)),
	}
	for k, v := range l.failReasons {
		t.FailReasons[k] = v
	}
	if l.missing > 0 {
		for seq, s := range l.st {
			if s&demoMsgConfirmed != 0 && s&demoMsgReceived == 0 {
				t.LostIDs = append(t.LostIDs, demoMsgID(seq))
				if len(t.LostIDs) == demoMaxLostIDs {
					break
				}
			}
		}
	}
	return t
}
