package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// sweepTrack keeps one sweep worker's protocol lines (ready, lost, up) as
// they arrive, so the coordinator can wait for a state and later read the
// whole history of a fault. Safe for concurrent use.
type sweepTrack struct {
	mu      sync.Mutex
	ready   bool
	events  []benchMsg    // lost and up lines, in arrival order
	err     error         // the worker failed or exited
	changed chan struct{} // closed and replaced on every change
}

func newSweepTrack() *sweepTrack {
	return &sweepTrack{changed: make(chan struct{})}
}

// run reads ch's protocol lines until the worker ends or ctx does.
func (t *sweepTrack) run(ctx context.Context, ch *benchChild) {
	for {
		m, err := ch.next(ctx)
		t.mu.Lock()
		switch {
		case err != nil:
			t.err = err
		case m.Type == wmReady:
			t.ready = true
		case m.Type == wmLost || m.Type == wmUp:
			t.events = append(t.events, m)
		}
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits until cond holds on the tracked state, the worker fails, or
// timeout passes.
func (t *sweepTrack) waitFor(ctx context.Context, timeout time.Duration, what string, cond func(ready bool, events []benchMsg) bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok, err, changed := cond(t.ready, t.events), t.err, t.changed
		t.mu.Unlock()
		switch {
		case ok:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("not %s within %v", what, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitReady waits for the worker's first connection.
func (t *sweepTrack) waitReady(ctx context.Context, timeout time.Duration) error {
	return t.waitFor(ctx, timeout, "ready", func(ready bool, _ []benchMsg) bool { return ready })
}

// waitUp waits until the worker is up after a fault that started at since
// (Unix ns): it lost its connection at or after since and is up again, or,
// unless mustLose, it never lost it.
func (t *sweepTrack) waitUp(ctx context.Context, since int64, mustLose bool, timeout time.Duration) error {
	return t.waitFor(ctx, timeout, "up again", func(_ bool, events []benchMsg) bool {
		losses, up := sweepState(events, since)
		return up && (losses > 0 || !mustLose)
	})
}

// snapshot returns a copy of the lines so far.
func (t *sweepTrack) snapshot() ([]benchMsg, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]benchMsg(nil), t.events...), t.err
}

// sweepState counts the losses at or after since and says whether the last
// line is an up (or there was no loss at all).
func sweepState(events []benchMsg, since int64) (losses int, up bool) {
	up = true
	for _, m := range events {
		if m.T < since {
			continue
		}
		switch m.Type {
		case wmLost:
			losses++
			up = false
		case wmUp:
			up = true
		}
	}
	return losses, up
}

// sweepOutcome is what one fault did to one contender.
type sweepOutcome struct {
	losses int           // connection losses at or after the fault's start
	extra  time.Duration // fault end → up after the last loss; 0 without a loss
	down   time.Duration // first loss → up after the last loss
}

// errSweepStillDown says a contender was not up again when its outcome was read.
var errSweepStillDown = errors.New("still down")

// sweepOutcomeOf reads one fault's outcome from a worker's lines: the fault
// started at start and ended at end (Unix ns). A contender that never lost
// its connection (a short partition its heartbeat did not notice) had no
// extra downtime. An up that comes before end (the contender reconnected
// before the coordinator's probe saw the broker back) counts as 0.
func sweepOutcomeOf(events []benchMsg, start, end int64) (sweepOutcome, error) {
	var o sweepOutcome
	var firstLost, lastUp int64
	up := true
	for _, m := range events {
		if m.T < start {
			continue
		}
		switch m.Type {
		case wmLost:
			if o.losses == 0 {
				firstLost = m.T
			}
			o.losses++
			up = false
		case wmUp:
			if !up {
				lastUp = m.T
			}
			up = true
		}
	}
	if o.losses == 0 {
		return o, nil
	}
	if !up {
		return o, errSweepStillDown
	}
	o.extra = time.Duration(max(0, lastUp-end))
	o.down = time.Duration(lastUp - firstLost)
	return o, nil
}
