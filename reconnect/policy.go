package reconnect

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults for the zero fields of a Policy. They are constants, not a mutable
// package variable, so one caller cannot change another's defaults.
const (
	defaultInitial    = 100 * time.Millisecond
	defaultMax        = 30 * time.Second
	defaultMultiplier = 2.0
	defaultJitter     = 0.5
	defaultResetAfter = 60 * time.Second
)

// maxMax bounds Policy.Max so that Max·(1+Jitter) still fits in a
// time.Duration; anything near it is a configuration mistake anyway.
const maxMax = time.Duration(math.MaxInt64 / 2)

// Policy describes a capped exponential reconnect schedule with jitter. It is
// plain data: the zero value of every field means its default, and a Schedule
// built from it (NewSchedule) holds the behaviour and the state.
type Policy struct {
	// Initial is the backoff delay after the first failed dial. Defaults to
	// 100ms.
	Initial time.Duration

	// Max caps every delay before jitter is applied, so no delay exceeds
	// Max·(1+Jitter). Defaults to 30s.
	Max time.Duration

	// Multiplier is the growth of the delay per failed attempt; it must be at
	// least 1. Defaults to 2.
	Multiplier float64

	// Jitter is the randomization factor in [0,1]: each delay d is drawn
	// uniformly from [d·(1−Jitter), d·(1+Jitter)]. Jitter cannot be turned off
	// on purpose: clients that retry in lockstep stampede a broker that has
	// just restarted. A tiny value such as 1e-9 is allowed for tests. Defaults
	// to 0.5.
	Jitter float64

	// MaxElapsed gives up once this long has passed without a connection,
	// counted from the last lost connection (or from NewSchedule): Next
	// returns ErrGaveUp rather than a delay that would end later than that.
	// Defaults to 0: never give up.
	MaxElapsed time.Duration

	// MaxAttempts gives up after this many failed dials in a row; any
	// successful dial starts a new row. Defaults to 0: no limit.
	MaxAttempts int

	// ResetAfter is how long a connection must stay up before losing it
	// resets the schedule (backoff back to Initial, immediate redial granted
	// again). Shorter-lived connections are treated as flaps and continue the
	// backoff. Defaults to 60s.
	ResetAfter time.Duration
}

// DefaultPolicy returns a fresh Policy with every default filled in.
func DefaultPolicy() Policy {
	return Policy{}.WithDefaults()
}

// WithDefaults returns a copy of p whose zero fields are replaced by their
// defaults. Non-zero fields, including invalid ones, are kept as they are so
// that Validate can report them.
func (p Policy) WithDefaults() Policy {
	if p.Initial == 0 {
		p.Initial = defaultInitial
	}
	if p.Max == 0 {
		p.Max = defaultMax
	}
	if p.Multiplier == 0 {
		p.Multiplier = defaultMultiplier
	}
	if p.Jitter == 0 {
		p.Jitter = defaultJitter
	}
	if p.ResetAfter == 0 {
		p.ResetAfter = defaultResetAfter
	}
	return p
}

// Validate reports every problem with p after defaults are applied, in one
// error that wraps ErrInvalidPolicy, or nil if p is usable.
func (p Policy) Validate() error {
	q := p.WithDefaults()
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"Initial", q.Initial},
		{"Max", q.Max},
		{"MaxElapsed", q.MaxElapsed},
		{"ResetAfter", q.ResetAfter},
	} {
		if f.d < 0 {
			add("%s must not be negative, got %v", f.name, f.d)
		}
	}
	if q.Initial > 0 && q.Max > 0 && q.Max < q.Initial {
		add("Max (%v) must not be less than Initial (%v)", q.Max, q.Initial)
	}
	if q.Max > maxMax {
		add("Max must be at most %v, got %v", maxMax, q.Max)
	}
	// The negated comparisons also reject NaN, which fails every comparison.
	if !(q.Multiplier >= 1) || math.IsInf(q.Multiplier, 1) {
		add("Multiplier must be a finite number >= 1, got %v", q.Multiplier)
	}
	if !(q.Jitter >= 0 && q.Jitter <= 1) {
		add("Jitter must be in [0,1], got %v", q.Jitter)
	}
	if q.MaxAttempts < 0 {
		add("MaxAttempts must not be negative, got %d", q.MaxAttempts)
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, strings.Join(problems, "; "))
}
