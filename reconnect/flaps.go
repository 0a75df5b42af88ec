package reconnect

import "time"

// flaps is the flap penalty of a Schedule: how many recent connections died
// within Policy.ResetAfter of being made, not yet forgiven by healthy
// connected time. It grows by one per flap, up to the count whose penalty
// reaches Max, so that forgiving a supervisor that flapped for an hour takes
// no longer than forgiving one that flapped to the cap once.
type flaps struct {
	delay   time.Duration // Policy.FlapDelay
	max     time.Duration // Policy.Max
	forgive time.Duration // Policy.FlapForgive
	limit   int           // the count whose penalty reaches max

	n      int           // unforgiven flaps
	credit time.Duration // healthy time not yet spent forgiving a flap
}

func newFlaps(p Policy) flaps {
	f := flaps{delay: p.FlapDelay, max: p.Max, forgive: p.FlapForgive, limit: 2}
	for f.penaltyOf(f.limit) < f.max {
		f.limit++
	}
	return f
}

// penaltyOf is the un-jittered penalty after n flaps in a row: none for the
// first, FlapDelay for the second, ×3 for each further one, capped at Max.
func (f flaps) penaltyOf(n int) time.Duration {
	if n < 2 {
		return 0
	}
	d := f.delay
	for i := 2; i < n && d < f.max; i++ {
		d *= flapGrowth
	}
	return min(d, f.max)
}

// penalty is the current un-jittered penalty.
func (f flaps) penalty() time.Duration { return f.penaltyOf(f.n) }

// flapped records a connection lost before it became healthy.
func (f *flaps) flapped() {
	f.n = min(f.n+1, f.limit)
}

// healthy records a healthy connection that lasted up: each FlapForgive of
// it forgives one flap. What is left over counts toward the next one, so
// several medium connections forgive as much as one long one.
func (f *flaps) healthy(up time.Duration) {
	if f.n == 0 {
		return
	}
	f.credit += up
	for f.n > 0 && f.credit >= f.forgive {
		f.n--
		f.credit -= f.forgive
	}
	if f.n == 0 {
		f.credit = 0
	}
}
