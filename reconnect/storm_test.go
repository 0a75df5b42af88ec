package reconnect

import (
	"math/rand"
	"slices"
	"testing"
	"time"
)

// The storm bounds, with the default policy, in simulated time.

// simSeeds is how many independently seeded supervisors each bound is
// checked on: the bounds must hold for every one of them, not on average.
const simSeeds = 1000

// simConnected returns a default schedule, seeded, whose supervisor has been
// connected for an hour, as a fleet is before a fault.
func simConnected(t testing.TB, seed int64) (*Schedule, *fakeClock) {
	t.Helper()
	s, c := seeded(t, Policy{}, seed)
	if d, err := s.Next(); err != nil || d != 0 {
		t.Fatalf("first Next() = %v, %v; want an immediate dial", d, err)
	}
	s.Connected()
	c.Advance(time.Hour)
	return s, c
}

func TestStormBrokerDownSixtySeconds(t *testing.T) {
	const down, limit = 60 * time.Second, 30
	most := 0
	for seed := int64(0); seed < simSeeds; seed++ {
		s, c := simConnected(t, seed)
		s.Lost()
		run := simulate(t, s, c, simDown{up: down}, down)
		most = max(most, len(run.dials))
		if len(run.dials) > limit {
			t.Fatalf("seed %d: %d dials while the broker was down for %v, want <= %d: %v",
				seed, len(run.dials), down, limit, run.dials)
		}
	}
	t.Logf("broker down %v: at most %d dials per supervisor over %d seeds (bound %d)", down, most, simSeeds, limit)
}

func TestStormFlappingBroker(t *testing.T) {
	const (
		closeIn  = 100 * time.Millisecond
		after    = 5 // flaps before the bound applies
		minGap   = 5 * time.Second
		duration = 30 * time.Minute
	)
	shortest := simNever
	for seed := int64(0); seed < simSeeds; seed++ {
		s, c := simConnected(t, seed)
		s.Lost() // the first loss is of a healthy connection
		run := simulate(t, s, c, simFlapper{closeIn: closeIn, r: rand.New(rand.NewSource(seed))}, duration)
		// Dial k+1 follows flap k (dial 0 is the immediate redial after the
		// healthy loss), so the gaps after the 5th flap start at dial 5.
		for k := after; k+1 < len(run.dials); k++ {
			gap := run.dials[k+1] - run.dials[k]
			shortest = min(shortest, gap)
			if gap < minGap {
				t.Fatalf("seed %d: %v between dials %d and %d, after the %dth flap; want >= %v (dials %v)",
					seed, gap, k, k+1, k, minGap, run.dials[:min(len(run.dials), 12)])
			}
		}
		if perMinute := float64(len(run.dials)) / duration.Minutes(); perMinute > 60/minGap.Seconds() {
			t.Fatalf("seed %d: %.1f dials a minute against a flapping broker", seed, perMinute)
		}
	}
	t.Logf("flapping broker (drops within %v): shortest gap between dials after the %dth flap %v over %d seeds (bound %v)",
		closeIn, after, shortest, simSeeds, minGap)
}

func TestStormFleetRestart(t *testing.T) {
	const (
		fleet  = 500
		bucket = 10 * time.Millisecond
		most   = fleet * 5 / 100
	)
	for _, down := range []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute} {
		t.Run(down.String(), func(t *testing.T) {
			buckets := map[time.Duration]int{}
			var first []time.Duration
			for i := 0; i < fleet; i++ {
				s, c := simConnected(t, int64(i)+int64(down))
				s.Lost() // every supervisor loses the node at the same instant
				run := simulate(t, s, c, simDown{up: down}, down+time.Minute)
				if len(run.ready) == 0 {
					t.Fatalf("supervisor %d not back a minute after the node", i)
				}
				// The dial that reconnected: the first one the restarted
				// node meets.
				at := run.dials[len(run.dials)-1]
				first = append(first, at)
				buckets[at/bucket]++
			}
			fullest := 0
			for _, n := range buckets {
				fullest = max(fullest, n)
			}
			slices.Sort(first)
			t.Logf("node down %v: %d supervisors reconnect from +%v to +%v after it is back; fullest %v bucket holds %d (%.1f%%, bound %d)",
				down, fleet, first[0]-down, first[fleet-1]-down, bucket, fullest, 100*float64(fullest)/fleet, most)
			if fullest > most {
				t.Errorf("%d of %d reconnecting dials in one %v bucket, want <= %d", fullest, fleet, bucket, most)
			}
		})
	}
}

func TestRepeatedKillsRedialAtOnce(t *testing.T) {
	for seed := int64(0); seed < 100; seed++ {
		s, c := simConnected(t, seed)
		s.Lost()
		kills := 10
		// The bench kills 1.5 s after the contender is back.
		run := simulate(t, s, c, simKiller{every: 1500 * time.Millisecond, kills: &kills}, time.Hour)
		if len(run.dials) != 11 {
			t.Fatalf("seed %d: %d dials for 10 kills, want 11", seed, len(run.dials))
		}
		for i, d := range run.delay[:11] {
			if d != 0 {
				t.Fatalf("seed %d: redial %d waited %v, want 0: a connection that worked for 1.5 s is not a flap", seed, i, d)
			}
		}
	}
}
