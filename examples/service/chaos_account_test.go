package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"
)

// accounting is the chaos test's ledger of orders.
type accounting struct {
	orders, accepted                int
	acceptedOnce, acceptedDup, lost int
	unacceptedProcessed, unaccepted int
	processedByNext                 int
	acrossInstances                 int            // processed once by each instance
	attempts                        map[string]int // answer -> count
	slowest                         time.Duration
	odd                             []attempt // transport errors other than refused, and slow ones
	lostKeys, dupKeys               []string
	retriedToAccept                 int
}

// account matches the orders sent against the orders the two instances
// processed.
func account(orders []order, first, next map[string]int, bound time.Duration) *accounting {
	a := &accounting{attempts: map[string]int{}}
	for _, o := range orders {
		a.orders++
		n := first[o.key] + next[o.key]
		if next[o.key] > 0 {
			a.processedByNext++
		}
		if first[o.key] == 1 && next[o.key] == 1 {
			// The dedupe window lives in one process: a copy still queued
			// when the first instance stopped is processed again by the
			// next. Counted apart, not as a broken promise of the service.
			a.acrossInstances++
			n = 1
		}
		for i, at := range o.attempts {
			label := at.err
			if at.code == 0 && at.err != "refused" {
				if at.reused {
					label += " on a kept-alive connection"
				} else {
					label += " on a new connection"
				}
			}
			if at.code != 0 {
				label = fmt.Sprintf("%d %s", at.code, http.StatusText(at.code))
				if at.err != "" {
					label += " (" + at.err + ")"
				}
			}
			a.attempts[label]++
			a.slowest = max(a.slowest, at.latency)
			if (at.err != "" && at.err != "refused") || at.latency > bound {
				a.odd = append(a.odd, at)
			}
			if at.code == http.StatusAccepted && i > 0 {
				a.retriedToAccept++
			}
		}
		switch {
		case o.accepted && n == 1:
			a.accepted++
			a.acceptedOnce++
		case o.accepted && n == 0:
			a.accepted++
			a.lost++
			a.lostKeys = append(a.lostKeys, o.key)
		case o.accepted:
			a.accepted++
			a.acceptedDup++
			a.dupKeys = append(a.dupKeys, fmt.Sprintf("%s x%d", o.key, n))
		case n > 0:
			a.unacceptedProcessed++
			if n > 1 {
				a.dupKeys = append(a.dupKeys, fmt.Sprintf("%s x%d (never accepted)", o.key, n))
			}
		default:
			a.unaccepted++
		}
	}
	return a
}

func (a *accounting) write(w io.Writer) {
	fmt.Fprintf(w, "orders sent (unique Idempotency-Keys)        %6d\n", a.orders)
	fmt.Fprintf(w, "  answered 202 (at some attempt)             %6d\n", a.accepted)
	fmt.Fprintf(w, "    processed exactly once by an instance    %6d\n", a.acceptedOnce)
	fmt.Fprintf(w, "    processed more than once by an instance  %6d   (must be 0)\n", a.acceptedDup)
	fmt.Fprintf(w, "    never processed (lost)                   %6d   (must be 0)\n", a.lost)
	fmt.Fprintf(w, "    202 only after a retry with the same key %6d\n", a.retriedToAccept)
	fmt.Fprintf(w, "  never 202, processed anyway (once)         %6d   (a 503 whose message the broker had stored)\n", a.unacceptedProcessed)
	fmt.Fprintf(w, "  never 202, not processed                   %6d\n", a.unaccepted)
	fmt.Fprintf(w, "  processed by the next instance             %6d   (left in the queue at SIGTERM)\n", a.processedByNext)
	fmt.Fprintf(w, "    of which processed by the first too      %6d   (a second copy queued behind the first: the dedupe window is per process)\n", a.acrossInstances)
	keys := make([]string, 0, len(a.attempts))
	for k := range a.attempts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "attempts by answer:\n")
	for _, k := range keys {
		fmt.Fprintf(w, "  %-42s %6d\n", k, a.attempts[k])
	}
	fmt.Fprintf(w, "slowest request                              %6v\n", a.slowest.Round(time.Millisecond))
}

// check fails t for every broken promise: a lost or doubled order, a
// transport error other than a refused connection after SIGTERM, a request
// slower than bound.
func (a *accounting) check(t *testing.T, bound time.Duration) {
	t.Helper()
	if a.lost > 0 {
		t.Errorf("%d orders answered 202 were never processed: %v", a.lost, first(a.lostKeys, 10))
	}
	if len(a.dupKeys) > 0 {
		t.Errorf("%d orders were processed more than once: %v", len(a.dupKeys), first(a.dupKeys, 10))
	}
	if a.accepted == 0 {
		t.Error("no order was accepted")
	}
	for label, n := range a.attempts {
		switch label {
		case "202 Accepted", "503 Service Unavailable", "refused":
		case "EOF on a new connection", "reset on a new connection":
			// A connection still in the accept queue when the listener
			// closes is dropped by the kernel: no load balancer would
			// still send to an instance DRAIN_PERIOD after SIGTERM, and
			// the request never reached a handler, so a retry with the same
			// key is safe. Only this test's client still sends.
		default:
			t.Errorf("%d attempts answered %q", n, label)
		}
	}
	if a.slowest > bound {
		t.Errorf("slowest request took %v, more than PUBLISH_TIMEOUT plus slack (%v)", a.slowest, bound)
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
