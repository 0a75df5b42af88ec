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
// The first dial of a fresh Schedule is immediate, and so is the first
// redial after losing a healthy connection (one that stayed up for
// Policy.ResetAfter), which also resets the dial backoff: the failed dials
// of an earlier outage say nothing about the next one. Failed dials in a row
// then wait Initial, growing by Multiplier up to Max, each jittered.
//
// A connection lost sooner is a flap. Flaps are counted across connections
// and forgiven only by healthy connected time (Policy.FlapForgive each). The
// redial after the first flap is immediate; after the second it waits
// FlapDelay, and each further flap triples that, up to Max; and while flaps
// are unforgiven no failed dial waits less than that penalty. So a node that
// accepts connections and drops them at once is dialled less and less
// often, down to about one dial per Max, while a healthy connection killed
// every few seconds is redialed at once every time.
//
// The give-up limits count from the last success: MaxAttempts counts failed
// dials since the last Connected, MaxElapsed measures time since the last Lost
// (or NewSchedule). Because any successful dial resets both, a flapping node
// never exhausts them; the flap penalty, not giving up, handles flaps.
type Schedule struct {
	policy   Policy
	clock    backoff.Clock
	rnd      func() float64 // jitter source, floats in [0,1)
	bo       backoff.ExponentialBackOff
	maxDelay time.Duration // Max·(1+Jitter), a hard cap on any delay
	flaps    flaps

	connected bool          // between Connected and Lost
	dialing   bool          // Next handed out a delay and its dial has not succeeded yet
	redial    bool          // the next Next is the first dial after a loss (or the very first)
	redialIn  time.Duration // un-jittered delay of that dial: 0, or the flap penalty
	failures  int           // failed dials since the last Connected
	upSince   time.Time     // when the current or last connection was made
	downSince time.Time     // when the last connection was lost, or the Schedule made
	gaveUp    error         // sticky until Connected: once given up, stay given up
}

// NewSchedule returns a fresh Schedule for p, with p's zero fields replaced by
// their defaults. A nil clock means the system clock. It returns an error
// wrapping ErrInvalidPolicy if p does not validate. Its jitter comes from
// math/rand's global source, so schedules in one process (or a fleet of
// processes) draw independently.
func NewSchedule(p Policy, clock backoff.Clock) (*Schedule, error) {
	return newSchedule(p, clock, systemRand)
}

// newSchedule is NewSchedule with the jitter source given, so that tests can
// replay schedules from seeds.
func newSchedule(p Policy, clock backoff.Clock, rnd func() float64) (*Schedule, error) {
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
		rnd:    rnd,
		bo: backoff.ExponentialBackOff{
			InitialInterval: p.Initial,
			// The ladder itself is un-jittered: Next draws the jitter from
			// the Schedule's own source (see jitter).
			RandomizationFactor: 0,
			Multiplier:          p.Multiplier,
			MaxInterval:         p.Max,
			// Always 0, never backoff's 15-minute default, which would
			// silently stop a supervisor. Policy.MaxElapsed is enforced by
			// Next instead, because backoff measures elapsed time from its
			// last Reset, and flaps deliberately withhold Resets. With
			// MaxElapsedTime 0 backoff also never returns its Stop value,
			// which is 0 in a struct literal and would read as "dial now".
			MaxElapsedTime: 0,
			Clock:          clock,
		},
		maxDelay: time.Duration(float64(p.Max) * (1 + p.Jitter)),
		flaps:    newFlaps(p),
		redial:   true,
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

	base := s.redialIn
	if !s.redial {
		base = max(s.bo.NextBackOff(), s.flaps.penalty())
	}
	s.redial, s.redialIn = false, 0
	d := jitter(base, s.policy.Jitter, s.rnd, s.maxDelay)

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
// connection was healthy or a flap. Calling it while already connected does
// nothing.
func (s *Schedule) Connected() {
	if s.connected {
		return
	}
	s.connected = true
	s.dialing = false
	s.redial, s.redialIn = false, 0
	s.failures = 0
	s.gaveUp = nil
	s.upSince = s.clock.Now()
}

// Lost records that the connection made since the last Connected is gone.
// A connection that stayed up for Policy.ResetAfter was healthy: its time
// forgives flaps, the dial backoff starts over, and the next dial is
// immediate. A shorter one is a flap: the flap penalty grows and the next
// dial waits it. The check happens here, lazily, so that no timer runs while
// connected. Calling Lost while not connected does nothing.
func (s *Schedule) Lost() {
	if !s.connected {
		return
	}
	now := s.clock.Now()
	s.connected = false
	s.downSince = now
	s.redial = true
	if up := now.Sub(s.upSince); up >= s.policy.ResetAfter {
		s.flaps.healthy(up)
		s.bo.Reset()
		s.redialIn = 0
		return
	}
	s.flaps.flapped()
	s.redialIn = s.flaps.penalty()
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
