package reconnect

import (
	"math/rand"
	"testing"
	"time"
)

// The simulations below run a Schedule as conn's supervisor loop does (Next,
// wait, dial, Connected, Lost) against a model of a broker, in simulated
// time on a fakeClock: no broker, no sleeps, jitter from a seeded source.

// Timings of the simulated network, as measured against a local RabbitMQ.
const (
	simRefuseIn  = time.Millisecond       // a dial to a port nothing listens on
	simHandshake = 10 * time.Millisecond  // TCP, AMQP handshake and ready hooks
	simDialLimit = 10 * time.Second       // conn.DefaultDialTimeout
	simHorizon   = 24 * time.Hour         // no simulation runs longer
	simHeartbeat = time.Second            // the bench's sweep heartbeat
	simNever     = time.Duration(1) << 62 // a connection that is never lost
)

// simBroker is what a dial meets: dial says whether a dial started at t
// succeeds and when it ends; lost says when a connection ready at t is lost
// (simNever after t for one that lasts).
type simBroker interface {
	dial(t time.Duration) (ok bool, end time.Duration)
	lost(t time.Duration) time.Duration
}

// simRun is the record of one simulated supervisor.
type simRun struct {
	dials []time.Duration // when each dial started
	ready []time.Duration // when each connection became ready
	delay []time.Duration // every delay Next returned
}

// simulate runs a supervisor with schedule s against b until until. Times
// are offsets from the start of the simulation.
func simulate(t testing.TB, s *Schedule, c *fakeClock, b simBroker, until time.Duration) simRun {
	t.Helper()
	start := c.Now()
	now := func() time.Duration { return c.Now().Sub(start) }
	var r simRun
	for {
		d, err := s.Next()
		if err != nil {
			t.Fatalf("Next() = %v at %v", err, now())
		}
		r.delay = append(r.delay, d)
		c.Advance(d)
		at := now()
		if at >= until {
			return r
		}
		r.dials = append(r.dials, at)
		ok, end := b.dial(at)
		c.Advance(end - at)
		if !ok {
			continue
		}
		s.Connected()
		r.ready = append(r.ready, end)
		lost := b.lost(end)
		if lost >= until {
			return r
		}
		c.Advance(lost - end)
		s.Lost()
	}
}

// seeded returns a schedule for p whose jitter comes from seed, and its clock.
func seeded(t testing.TB, p Policy, seed int64) (*Schedule, *fakeClock) {
	t.Helper()
	c := newFakeClock()
	s, err := newSchedule(p, c, rand.New(rand.NewSource(seed)).Float64)
	if err != nil {
		t.Fatalf("newSchedule(%+v) = %v", p, err)
	}
	return s, c
}
