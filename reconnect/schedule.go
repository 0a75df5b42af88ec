package reconnect

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Schedule is the stateful reconnect schedule of one supervisor. It is not
// safe for concurrent use: the goroutine that owns the connection owns the
// Schedule, as backoff.ExponentialBackOff requires.
//
// The owner calls Next before every dial, waits the returned delay (see
// Wait), then dials. After a successful dial it calls Connected; when that
// connection is later lost it calls Lost. A failed dial is simply followed by
// another Next, which is how the Schedule counts failures.
//
// The first dial of a fresh Schedule is immediate. After a lost connection
// the first redial is immediate too if the connection had stayed up for
// Policy.ResetAfter, which also resets the schedule to its fresh state.
// Otherwise the connection counts as a flap: the Schedule spends its single
// immediate-redial grant if it still holds it, and continues the backoff
// sequence where it left off if not, so a node that accepts connections and
// drops them at once is dialled less and less often, down to one dial per
// Policy.Max. Only a connection that stays up for ResetAfter gives the grant
// back.
//
// The give-up limits count from the last success: MaxAttempts counts failed
// dials since the last Connected, MaxElapsed measures time since the last Lost
// (or NewSchedule). Because any successful dial resets both, a flapping node
// never exhausts them; the growing backoff, not giving up, handles flaps.
type Schedule struct {
	policy   Policy
	clock    backoff.Clock
	bo       backoff.ExponentialBackOff
	maxDelay time.Duration // Max·(1+Jitter), a hard cap on any delay

	connected bool      // between Connected and Lost
	dialing   bool      // Next handed out a delay and its dial has not succeeded yet
	immediate bool      // the next Next returns 0 without touching the backoff
	grant     bool      // one immediate redial after a flap is still available
	failures  int       // failed dials since the last Connected
	upSince   time.Time // when the current or last connection was made
	downSince time.Time // when the last connection was lost, or the Schedule made
	gaveUp    error     // sticky until Connected: once given up, stay given up
}

// NewSchedule returns a fresh Schedule for p, with p's zero fields replaced by
// their defaults. A nil clock means the system clock. It returns an error
// wrapping ErrInvalidPolicy if p does not validate.
func NewSchedule(p Policy, clock backoff.Clock) (*Schedule, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.WithDefaults()
	if clock == nil {
		clock = backoff.SystemClock
	}
	s := &Schedule{
		policy: p,
		clock:  clock,
		bo: backoff.ExponentialBackOff{
			InitialInterval:     p.Initial,
			RandomizationFactor: p.Jitter,
			Multiplier:          p.Multiplier,
			MaxInterval:         p.Max,
			// Always 0, never backoff's 15-minute default, which would
			// silently stop a supervisor. Policy.MaxElapsed is enforced by
			// Next instead, because backoff measures elapsed time from its
			// last Reset, and flap damping deliberately withholds Resets:
			// a supervisor that flapped for an hour would give up on the
			// first failed redial. With MaxElapsedTime 0 backoff also never
			// returns its Stop value, which is 0 in a struct literal and
			// would read as "dial now".
			MaxElapsedTime: 0,
			Clock:          clock,
		},
		maxDelay:  time.Duration(float64(p.Max) * (1 + p.Jitter)),
		immediate: true,
		grant:     true,
	}
	s.bo.Reset() // sets the first interval and the start time from the clock
	s.downSince = clock.Now()
	return s, nil
}

// Next returns how long to wait before the next dial. Every Next after
// another Next, with no Connected between them, counts one failed dial.
//
// It returns an error wrapping ErrGaveUp once Policy.MaxAttempts failed dials
// were made in a row, or when the delay would end more than Policy.MaxElapsed
// after the connection was lost (so no dial starts past that limit); from
// then on Next keeps returning that error until Connected is called. Calling
// Next while connected counts as Lost first.
func (s *Schedule) Next() (time.Duration, error) {
	if s.gaveUp != nil {
		return 0, s.gaveUp
	}
	if s.connected {
		s.Lost()
	}
	if s.dialing {
		s.failures++
	}
	s.dialing = false

	if limit := s.policy.MaxAttempts; limit > 0 && s.failures >= limit {
		s.gaveUp = fmt.Errorf("%w after %d failed dials in a row (MaxAttempts %d)", ErrGaveUp, s.failures, limit)
		return 0, s.gaveUp
	}

	var d time.Duration
	if s.immediate {
		s.immediate = false
	} else {
		// backoff rounds its draw to whole nanoseconds and may land a
		// nanosecond above Max·(1+Jitter); the cap makes the documented bound
		// exact.
		d = min(s.bo.NextBackOff(), s.maxDelay)
	}

	if limit := s.policy.MaxElapsed; limit > 0 {
		if down := s.clock.Now().Sub(s.downSince); down+d > limit {
			s.gaveUp = fmt.Errorf("%w: no connection for %v, next dial would start after MaxElapsed %v",
				ErrGaveUp, down.Round(time.Millisecond), limit)
			return 0, s.gaveUp
		}
	}

	s.dialing = true
	return d, nil
}

// Connected records a successful dial. It ends the row of failed dials and
// clears a give-up, and starts the clock that decides, at Lost, whether the
// connection lived long enough to reset the schedule. Calling it while
// already connected does nothing.
func (s *Schedule) Connected() {
	if s.connected {
		return
	}
	s.connected = true
	s.dialing = false
	s.immediate = false
	s.failures = 0
	s.gaveUp = nil
	s.upSince = s.clock.Now()
}

// Lost records that the connection made since the last Connected is gone.
// If it stayed up for Policy.ResetAfter the schedule returns to its fresh
// state; otherwise the immediate-redial grant is spent if still held. The
// check happens here, lazily, so that no timer runs while connected. Calling
// Lost while not connected does nothing.
func (s *Schedule) Lost() {
	if !s.connected {
		return
	}
	now := s.clock.Now()
	s.connected = false
	s.downSince = now
	if now.Sub(s.upSince) >= s.policy.ResetAfter {
		s.bo.Reset()
		s.grant = true
		s.immediate = true
		return
	}
	if s.grant {
		s.grant = false
		s.immediate = true
	}
}

// Attempt returns the number of failed dials since the last Connected, as of
// the latest Next: 0 for the first dial and for the first redial after a lost
// connection, 1 for the first retry after a failed dial, and so on.
func (s *Schedule) Attempt() int {
	return s.failures
}

// Policy returns the policy the Schedule runs, with defaults filled in.
func (s *Schedule) Policy() Policy {
	return s.policy
}
