package reconnect

import (
	"math/rand"
	"time"
)

// jitter draws a delay uniformly from [d·(1−factor), d·(1+factor)] with
// rnd, a source of floats in [0,1), and caps it at limit. Schedule draws its
// own jitter instead of leaving it to backoff.ExponentialBackOff, whose
// draws come from math/rand's global source: a per-Schedule source lets
// tests replay a fleet of schedules from seeds.
func jitter(d time.Duration, factor float64, rnd func() float64, limit time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	j := float64(d) * (1 + factor*(2*rnd()-1))
	return min(time.Duration(j), limit)
}

// systemRand is the jitter source of a Schedule made by NewSchedule:
// math/rand's global source, seeded at random by the runtime and safe for
// concurrent use, so schedules in one process draw independently.
func systemRand() float64 { return rand.Float64() }
