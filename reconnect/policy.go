package reconnect

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults for the zero fields of a Policy. They are constants, not a mutable
// package variable, so one caller cannot change another's defaults. The
// README's "Reconnect policy" section gives the measurements behind them.
const (
	// defaultInitial: a refused dial costs the broker nothing (no AMQP
	// handshake happens), so the first retries come quickly and a fault of a
	// second or two ends with little extra downtime.
	defaultInitial = 100 * time.Millisecond
	// defaultMax bounds the wait after a long outage to Max·(1+Jitter) =
	// 14 s, under a quarter of a 60 s fault, and keeps a supervisor facing a
	// dead broker at about 6 dials a minute (28 in its first minute). The
	// old 30 s cap let one unlucky wait last 45 s.
	defaultMax = 10 * time.Second
	// defaultMultiplier: with ×1.2 per failed dial the delays so far add up
	// to about five times the next one, so the wait after the broker comes
	// back is about a sixth of the outage, (1.2−1)·(1+0.4) = 0.28 of it at
	// worst: proportionate to the fault. With ×2 the next delay was as long
	// as the whole outage so far.
	defaultMultiplier = 1.2
	// defaultJitter spreads a fleet: every delay is drawn from ±40% of its
	// step, and the draws add up, so 500 clients that lost a node at the
	// same instant meet it again over hundreds of milliseconds (at most 18
	// in any 10 ms after a 2 s restart). ±50% would spread them a little
	// more but let the worst wait after a 15 s outage exceed a third of it.
	defaultJitter = 0.4
	// defaultResetAfter: a connection that worked for a second did real work
	// (hooks, consumers, publishes); losing it is a new fault, not a flap.
	// A broker that drops connections right after accepting them does so
	// within milliseconds.
	defaultResetAfter = time.Second
	// defaultFlapDelay: the second flap in a row waits a second, the third
	// three, the fourth nine, and from the fifth on the delay is at Max, so a
	// flapping broker sees at most one handshake per Max·(1−Jitter) = 6 s from
	// each client. A flap costs the broker a whole handshake (TCP, AMQP,
	// authentication, channels, consumers), a refused dial nothing: so flaps
	// escalate faster than failed dials.
	defaultFlapDelay = time.Second
	// defaultFlapForgive: ten seconds of healthy connection forgive one flap,
	// so a supervisor that flapped up to the cap trusts the broker fully
	// again after under a minute of health.
	defaultFlapForgive = 10 * time.Second
)

// flapGrowth is how much each further flap in a row multiplies FlapDelay by.
// It is fixed rather than a Policy field: its only job is to reach Max within
// a few flaps, and FlapDelay and Max already say where it starts and ends.
const flapGrowth = 3

// maxMax bounds Policy.Max so that Max·(1+Jitter) still fits in a
// time.Duration; anything near it is a configuration mistake anyway.
const maxMax = time.Duration(math.MaxInt64 / 2)

// Policy describes a reconnect schedule: capped exponential backoff with
// jitter for failed dials, and a separate, faster-growing penalty for
// connections that flap. It is plain data: the zero value of every field
// means its default, and a Schedule built from it (NewSchedule) holds the
// behaviour and the state.
//
// The two kinds of evidence are kept apart on purpose. Failed dials say the
// broker is down now; they are forgotten as soon as a connection proves
// healthy, so the next fault starts from an immediate redial. Flaps (a
// connection that dies within ResetAfter of being made) say that connecting
// works but does not stick; they are remembered across connections and
// forgiven only by healthy connected time (FlapForgive each).
type Policy struct {
	// Initial is the backoff delay after the first failed dial. Defaults to
	// 100ms.
	Initial time.Duration

	// Max caps every delay before jitter is applied, so no delay exceeds
	// Max·(1+Jitter). Defaults to 10s.
	Max time.Duration

	// Multiplier is the growth of the delay per failed dial in a row; it must
	// be at least 1. Defaults to 1.2.
	Multiplier float64

	// Jitter is the randomization factor in [0,1]: each delay d is drawn
	// uniformly from [d·(1−Jitter), d·(1+Jitter)]. Jitter cannot be turned off
	// on purpose: clients that retry in lockstep stampede a broker that has
	// just restarted. A tiny value such as 1e-9 is allowed for tests. An
	// immediate redial (0) stays immediate. Defaults to 0.4.
	Jitter float64

	// MaxElapsed gives up once this long has passed without a connection,
	// counted from the last lost connection (or from NewSchedule): Next
	// returns ErrGaveUp rather than a delay that would end later than that.
	// Defaults to 0: never give up.
	MaxElapsed time.Duration

	// MaxAttempts gives up after this many failed dials in a row; any
	// successful dial starts a new row. Defaults to 0: no limit.
	MaxAttempts int

	// ResetAfter is how long a connection must stay up to count as healthy.
	// Losing a healthy connection resets the dial backoff and is followed by
	// an immediate redial; losing one that lived less is a flap. Defaults to
	// 1s.
	ResetAfter time.Duration

	// FlapDelay is the delay before the redial after the second flap in a
	// row (the first flap is redialed at once: one quick loss may be an
	// operator's close). Each further flap multiplies it by 3, up to Max.
	// While flaps are unforgiven, failed dials also wait at least this
	// penalty. Defaults to 1s.
	FlapDelay time.Duration

	// FlapForgive is the healthy connected time that forgives one flap.
	// Defaults to 10s.
	FlapForgive time.Duration
}

// DefaultPolicy returns a fresh Policy with every default filled in.
func DefaultPolicy() Policy {
	return Policy{}.WithDefaults()
}

// WithDefaults returns a copy of p whose zero fields are replaced by their
// defaults. Non-zero fields, including invalid ones, are kept as they are so
// that Validate can report them.
func (p Policy) WithDefaults() Policy {
	setDuration := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDuration(&p.Initial, defaultInitial)
	setDuration(&p.Max, defaultMax)
	setDuration(&p.ResetAfter, defaultResetAfter)
	setDuration(&p.FlapDelay, defaultFlapDelay)
	setDuration(&p.FlapForgive, defaultFlapForgive)
	if p.Multiplier == 0 {
		p.Multiplier = defaultMultiplier
	}
	if p.Jitter == 0 {
		p.Jitter = defaultJitter
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
		{"FlapDelay", q.FlapDelay},
		{"FlapForgive", q.FlapForgive},
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
