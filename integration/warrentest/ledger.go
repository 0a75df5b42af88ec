package warrentest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxListed bounds how many lost IDs a failure message names.
const maxListed = 20

// Ledger records the IDs of messages the broker confirmed (Confirmed) and
// of messages that arrived (Received, or a Tap), so AssertNoLoss can check
// the guarantee a confirm gives: a confirmed message is delivered, at least
// once. It is safe for concurrent use; its memory grows with the number of
// distinct IDs, which a test bounds.
type Ledger struct {
	mu        sync.Mutex
	confirmed map[string]bool
	received  map[string]int
	// wake has room for one signal: a Received after the last wait.
	wake chan struct{}
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{confirmed: map[string]bool{}, received: map[string]int{}, wake: make(chan struct{}, 1)}
}

// Confirmed records that the broker confirmed the message with this ID.
func (l *Ledger) Confirmed(id string) {
	l.mu.Lock()
	l.confirmed[id] = true
	l.mu.Unlock()
	l.signal()
}

// Received records one delivery of the message with this ID.
func (l *Ledger) Received(id string) {
	l.mu.Lock()
	l.received[id]++
	l.mu.Unlock()
	l.signal()
}

func (l *Ledger) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Lost returns the confirmed IDs never received, sorted.
func (l *Ledger) Lost() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost []string
	for id := range l.confirmed {
		if l.received[id] == 0 {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	return lost
}

// Counts returns how many IDs were confirmed, how many distinct IDs were
// received, and how many deliveries were duplicates (at-least-once allows
// them; a test may bound them).
func (l *Ledger) Counts() (confirmed, received, duplicates int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.received {
		received++
		duplicates += n - 1
	}
	return len(l.confirmed), received, duplicates
}

// AssertNoLoss waits up to within for every confirmed message to be
// received, and fails the test naming the ones that were not.
func (l *Ledger) AssertNoLoss(t testing.TB, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		lost := l.Lost()
		if len(lost) == 0 {
			return
		}
		select {
		case <-l.wake:
		case <-timer.C:
			c, r, d := l.Counts()
			t.Errorf("warrentest: %d of %d confirmed messages never arrived within %v (%d received, %d duplicates): %s",
				len(lost), c, within, r, d, listed(lost))
			return
		}
	}
}

func listed(ids []string) string {
	if len(ids) <= maxListed {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:maxListed], ", ") + fmt.Sprintf(", and %d more", len(ids)-maxListed)
}
