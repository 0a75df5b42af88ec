package reconnect

import (
	"errors"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakeClock is a backoff.Clock that moves only when told to.
type fakeClock struct{ now time.Time }

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// tinyJitter makes delays deterministic to within a nanosecond or two: jitter
// itself cannot be turned off.
const tinyJitter = 1e-9

// jitterSlack absorbs backoff's rounding of a draw to whole nanoseconds.
const jitterSlack = 2 * time.Nanosecond

func mustSchedule(t testing.TB, p Policy, c *fakeClock) *Schedule {
	t.Helper()
	s, err := NewSchedule(p, c)
	if err != nil {
		t.Fatalf("NewSchedule(%+v) = %v", p, err)
	}
	return s
}

func mustNext(t *testing.T, s *Schedule) time.Duration {
	t.Helper()
	d, err := s.Next()
	if err != nil {
		t.Fatalf("Next() error = %v after %d failed dials", err, s.Attempt())
	}
	return d
}

func near(got, want time.Duration) bool {
	diff := got - want
	return diff <= jitterSlack && diff >= -jitterSlack
}

// op is one step of a scripted supervisor: the schedule call it makes and, for
// Next, the delay it must get back.
type op struct {
	call    string        // "next", "up" (Connected), "down" (Lost), "wait" (advance the clock)
	d       time.Duration // for "next", a negative d accepts any delay
	attempt int           // for "next": Attempt() afterwards
}

func next(d time.Duration, attempt int) op { return op{call: "next", d: d, attempt: attempt} }

var (
	up   = op{call: "up"}
	down = op{call: "down"}
)

func wait(d time.Duration) op { return op{call: "wait", d: d} }

func TestScheduleScripts(t *testing.T) {
	const (
		ms      = time.Millisecond
		flap    = time.Second     // shorter than ResetAfter
		healthy = 5 * time.Second // ResetAfter exactly
	)
	base := Policy{Initial: 100 * ms, Max: 800 * ms, Multiplier: 2, Jitter: tinyJitter,
		ResetAfter: healthy, FlapDelay: 200 * ms, FlapForgive: 10 * time.Second}
	flapOnce := []op{up, wait(flap), down}
	tests := []struct {
		name string
		p    Policy
		ops  []op
	}{
		{
			name: "first dial is immediate",
			p:    base,
			ops:  []op{next(0, 0)},
		},
		{
			name: "backoff grows and is capped at Max",
			p:    base,
			ops: []op{next(0, 0), next(100*ms, 1), next(200*ms, 2), next(400*ms, 3),
				next(800*ms, 4), next(800*ms, 5), next(800*ms, 6)},
		},
		{
			name: "multiplier one keeps a constant delay",
			p:    Policy{Initial: 300 * ms, Multiplier: 1, Jitter: tinyJitter},
			ops:  []op{next(0, 0), next(300*ms, 1), next(300*ms, 2), next(300*ms, 3)},
		},
		{
			name: "a healthy loss redials at once and restarts the backoff",
			p:    base,
			ops: []op{next(0, 0), next(100*ms, 1), next(200*ms, 2), next(400*ms, 3),
				up, wait(healthy), down, next(0, 0), next(100*ms, 1), next(200*ms, 2),
				up, wait(time.Hour), down, next(0, 0), next(100*ms, 1)},
		},
		{
			name: "healthy connections killed again and again are redialed at once every time",
			p:    base,
			ops: []op{next(0, 0), up, wait(healthy), down, next(0, 0), up, wait(healthy), down,
				next(0, 0), up, wait(healthy), down, next(0, 0), up, wait(healthy), down, next(0, 0)},
		},
		{
			name: "the first flap redials at once, later ones wait FlapDelay tripled up to Max",
			p:    base,
			ops: concat([]op{next(0, 0)}, flapOnce, []op{next(0, 0)}, flapOnce, []op{next(200*ms, 0)},
				flapOnce, []op{next(600*ms, 0)}, flapOnce, []op{next(800*ms, 0)}, flapOnce, []op{next(800*ms, 0)}),
		},
		{
			name: "failed dials wait at least the flap penalty",
			p:    base,
			ops: concat([]op{next(0, 0)}, flapOnce, []op{next(0, 0)}, flapOnce,
				[]op{next(200*ms, 0), next(200*ms, 1), next(200*ms, 2), next(400*ms, 3), next(800*ms, 4)}),
		},
		{
			name: "a connection just short of ResetAfter is a flap",
			p:    base,
			ops: []op{next(0, 0), up, wait(healthy - time.Nanosecond), down, next(0, 0),
				up, wait(healthy - time.Nanosecond), down, next(200*ms, 0)},
		},
		{
			name: "each FlapForgive of healthy time forgives one flap",
			p:    base,
			ops: concat([]op{next(0, 0)}, flapOnce, []op{next(0, 0)}, flapOnce, []op{next(200*ms, 0)},
				// 10 s healthy: two flaps become one; the next flap is the second.
				[]op{up, wait(10 * time.Second), down, next(0, 0)}, flapOnce, []op{next(200*ms, 0)},
				// 20 s healthy: both forgiven; the next flap is a first again.
				[]op{up, wait(20 * time.Second), down, next(0, 0)}, flapOnce, []op{next(0, 0)}),
		},
		{
			name: "healthy time adds up across connections",
			p:    base,
			ops: concat([]op{next(0, 0)}, flapOnce, []op{next(0, 0)}, flapOnce, []op{next(200*ms, 0)},
				[]op{up, wait(6 * time.Second), down, next(0, 0), up, wait(6 * time.Second), down, next(0, 0)},
				flapOnce, []op{next(200*ms, 0)}),
		},
		{
			name: "flaps stop counting where the penalty reaches Max",
			p:    base,
			// Ten flaps count as four (200, 600, then Max); 30 s of health
			// forgive three, so the next flap is the second.
			ops: concat([]op{next(0, 0)}, repeat(concat(flapOnce, []op{next(-1, 0)}), 10),
				[]op{up, wait(30 * time.Second), down, next(0, 0)}, flapOnce, []op{next(200*ms, 0)}),
		},
		{
			name: "Attempt counts failed dials since the last success",
			p:    base,
			ops: []op{next(0, 0), next(100*ms, 1), next(200*ms, 2), up, wait(healthy), down,
				next(0, 0), next(100*ms, 1)},
		},
		{
			name: "Next while connected counts as a lost connection",
			p:    base,
			ops:  []op{next(0, 0), up, wait(flap), next(0, 0), up, wait(flap), next(200*ms, 0)},
		},
		{
			name: "redundant Connected and Lost are ignored",
			p:    base,
			ops: []op{down, next(0, 0), up, wait(flap), up, down, down, next(0, 0),
				up, wait(flap), down, next(200*ms, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			s := mustSchedule(t, tt.p, c)
			for i, o := range tt.ops {
				switch o.call {
				case "next":
					got := mustNext(t, s)
					if o.d >= 0 && !near(got, o.d) {
						t.Fatalf("op %d: Next() = %v, want %v", i, got, o.d)
					}
					if a := s.Attempt(); a != o.attempt {
						t.Fatalf("op %d: Attempt() = %d, want %d", i, a, o.attempt)
					}
					c.Advance(got) // the supervisor waits, then dials
				case "up":
					s.Connected()
				case "down":
					s.Lost()
				case "wait":
					c.Advance(o.d)
				default:
					t.Fatalf("op %d: unknown call %q", i, o.call)
				}
			}
		})
	}
}

func concat(parts ...[]op) []op {
	var out []op
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func repeat(ops []op, n int) []op {
	var out []op
	for i := 0; i < n; i++ {
		out = append(out, ops...)
	}
	return out
}

func TestScheduleMaxAttempts(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		wantDials   int // dials made before Next gives up
	}{
		{name: "one attempt", maxAttempts: 1, wantDials: 1},
		{name: "three attempts", maxAttempts: 3, wantDials: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			s := mustSchedule(t, Policy{MaxAttempts: tt.maxAttempts}, c)
			dials := 0
			var err error
			for dials <= tt.maxAttempts+1 {
				var d time.Duration
				if d, err = s.Next(); err != nil {
					break
				}
				c.Advance(d)
				dials++
			}
			if !errors.Is(err, ErrGaveUp) {
				t.Fatalf("Next() after %d failed dials = %v, want ErrGaveUp", dials, err)
			}
			if dials != tt.wantDials {
				t.Errorf("gave up after %d dials, want %d", dials, tt.wantDials)
			}
			if s.Attempt() != tt.maxAttempts {
				t.Errorf("Attempt() = %d, want %d", s.Attempt(), tt.maxAttempts)
			}
			if _, again := s.Next(); !errors.Is(again, ErrGaveUp) || s.Attempt() != tt.maxAttempts {
				t.Errorf("Next() after giving up = %v with Attempt %d, want ErrGaveUp again and no new count",
					again, s.Attempt())
			}
			// A successful dial (say, one the user forced) clears it.
			s.Connected()
			s.Lost()
			if _, err := s.Next(); err != nil {
				t.Errorf("Next() after Connected and Lost = %v, want nil", err)
			}
		})
	}

	t.Run("a successful dial starts a new row", func(t *testing.T) {
		c := newFakeClock()
		s := mustSchedule(t, Policy{MaxAttempts: 3, Jitter: tinyJitter}, c)
		for i := 0; i < 3; i++ { // the first dial and two failed retries
			mustNext(t, s)
		}
		s.Connected()
		c.Advance(time.Second)
		s.Lost()
		for i := 0; i < 3; i++ {
			mustNext(t, s)
		}
		if _, err := s.Next(); !errors.Is(err, ErrGaveUp) {
			t.Fatalf("Next() after 3 failed dials in the new row = %v, want ErrGaveUp", err)
		}
	})
}

func TestScheduleMaxElapsed(t *testing.T) {
	const ms = time.Millisecond
	p := Policy{Initial: 100 * ms, Multiplier: 2, Jitter: tinyJitter, MaxElapsed: time.Second}

	t.Run("gives up rather than dial past MaxElapsed", func(t *testing.T) {
		c := newFakeClock()
		s := mustSchedule(t, p, c)
		// Dials at 0, 100, 300, 700 ms; the next would start at 1500 ms.
		for _, want := range []time.Duration{0, 100 * ms, 200 * ms, 400 * ms} {
			if got := mustNext(t, s); !near(got, want) {
				t.Fatalf("Next() = %v, want %v", got, want)
			}
			c.Advance(want)
		}
		_, err := s.Next()
		if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "MaxElapsed") {
			t.Fatalf("Next() at 700ms = %v, want ErrGaveUp naming MaxElapsed", err)
		}
	})

	t.Run("counts from the lost connection, not from creation", func(t *testing.T) {
		c := newFakeClock()
		s := mustSchedule(t, p, c)
		mustNext(t, s)
		s.Connected()
		c.Advance(time.Hour)
		s.Lost()
		for _, want := range []time.Duration{0, 100 * ms, 200 * ms, 400 * ms} {
			if got := mustNext(t, s); !near(got, want) {
				t.Fatalf("Next() = %v, want %v", got, want)
			}
			c.Advance(want)
		}
		if _, err := s.Next(); !errors.Is(err, ErrGaveUp) {
			t.Fatalf("Next() 700ms after Lost = %v, want ErrGaveUp", err)
		}
	})

	t.Run("a slow dial counts too", func(t *testing.T) {
		c := newFakeClock()
		s := mustSchedule(t, p, c)
		mustNext(t, s)
		c.Advance(2 * time.Second) // the dial itself hung until its timeout
		if _, err := s.Next(); !errors.Is(err, ErrGaveUp) {
			t.Fatalf("Next() 2s after the first dial = %v, want ErrGaveUp", err)
		}
	})
}

func TestScheduleDefaultsNeverGiveUp(t *testing.T) {
	c := newFakeClock()
	s := mustSchedule(t, Policy{}, c)
	// 10 000 failed dials at the 30 s cap is about 3.5 days without a connection.
	for i := 0; i < 10_000; i++ {
		d, err := s.Next()
		if err != nil {
			t.Fatalf("Next() #%d = %v, want the default policy never to give up", i, err)
		}
		c.Advance(d + 10*time.Second) // each dial also times out slowly
	}
}

func TestNewSchedule(t *testing.T) {
	if _, err := NewSchedule(Policy{Jitter: 2}, nil); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("NewSchedule(bad policy) = %v, want ErrInvalidPolicy", err)
	}
	s, err := NewSchedule(Policy{Initial: time.Second}, nil) // nil clock: the system clock
	if err != nil {
		t.Fatalf("NewSchedule(nil clock) = %v", err)
	}
	if got, want := s.Policy(), (Policy{Initial: time.Second}).WithDefaults(); got != want {
		t.Errorf("Policy() = %+v, want %+v", got, want)
	}
	if d := mustNext(t, s); d != 0 {
		t.Errorf("first Next() = %v, want 0", d)
	}
	if d := mustNext(t, s); d < 500*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("second Next() = %v, want within [500ms, 1.5s]", d)
	}
}

// model is an independent statement of the schedule contract: it tracks the
// un-jittered ladder of failed dials, the redial after a loss and the flap
// count.
type model struct {
	p        Policy
	cur      time.Duration // un-jittered delay of the next failed dial
	redial   bool
	redialIn time.Duration
	flaps    int
	credit   time.Duration
}

func newModel(p Policy) *model {
	p = p.WithDefaults()
	return &model{p: p, cur: p.Initial, redial: true}
}

// penalty is FlapDelay·3^(n−2) capped at Max, or 0 below two flaps.
func (m *model) penalty(n int) time.Duration {
	if n < 2 {
		return 0
	}
	d := float64(m.p.FlapDelay) * math.Pow(3, float64(n-2))
	return time.Duration(min(d, float64(m.p.Max)))
}

// next returns the un-jittered delay of the next dial (0: immediate).
func (m *model) next() time.Duration {
	if m.redial {
		m.redial = false
		return m.redialIn
	}
	d := max(m.cur, m.penalty(m.flaps))
	if float64(m.cur) >= float64(m.p.Max)/m.p.Multiplier {
		m.cur = m.p.Max
	} else {
		m.cur = time.Duration(float64(m.cur) * m.p.Multiplier)
	}
	return d
}

func (m *model) lost(up time.Duration) {
	m.redial = true
	if up >= m.p.ResetAfter {
		if m.flaps > 0 {
			m.credit += up
			for m.flaps > 0 && m.credit >= m.p.FlapForgive {
				m.flaps--
				m.credit -= m.p.FlapForgive
			}
		}
		if m.flaps == 0 {
			m.credit = 0
		}
		m.cur, m.redialIn = m.p.Initial, 0
		return
	}
	if m.penalty(m.flaps) < m.p.Max {
		m.flaps++
	}
	m.redialIn = m.penalty(m.flaps)
}

func randomPolicy(r *rand.Rand) Policy {
	initial := time.Duration(1+r.Int63n(int64(5*time.Second))) * time.Nanosecond
	p := Policy{
		Initial:     initial,
		Max:         initial + time.Duration(r.Int63n(int64(initial)*50+1)),
		Multiplier:  1 + 3*r.Float64(),
		Jitter:      r.Float64(),
		ResetAfter:  time.Duration(1+r.Intn(120)) * time.Second,
		FlapDelay:   time.Duration(1+r.Int63n(int64(10*time.Second))) * time.Nanosecond,
		FlapForgive: time.Duration(1+r.Intn(60)) * time.Second,
	}
	switch r.Intn(5) {
	case 0:
		p.Jitter = tinyJitter
	case 1:
		p.Jitter = 1
	case 2:
		p.Multiplier = 1
	}
	return p
}

// TestScheduleDelayBounds checks, for many random policies and random
// sequences of failed dials, flaps and healthy connections, that every
// delay lies in [d·(1−J), d·(1+J)] for the un-jittered d of the model
// (rounded outwards to whole nanoseconds) and never exceeds Max·(1+J).
func TestScheduleDelayBounds(t *testing.T) {
	const (
		seed     = 20240601
		policies = 500
		steps    = 200
	)
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < policies; i++ {
		p := randomPolicy(r)
		c := newFakeClock()
		s, err := newSchedule(p, c, r.Float64)
		if err != nil {
			t.Fatalf("newSchedule(%+v) = %v", p, err)
		}
		m := newModel(p)
		capDelay := float64(p.Max) * (1 + p.Jitter)
		for step := 0; step < steps; step++ {
			got := mustNext(t, s)
			want := m.next()
			lo := math.Floor(float64(want) * (1 - p.Jitter))
			hi := math.Ceil(float64(want) * (1 + p.Jitter))
			if float64(got) < lo || float64(got) > hi {
				t.Fatalf("policy %+v step %d: Next() = %v, want within [%v, %v] around %v",
					p, step, got, time.Duration(lo), time.Duration(hi), want)
			}
			if float64(got) > capDelay {
				t.Fatalf("policy %+v step %d: Next() = %v exceeds Max·(1+J) = %v",
					p, step, got, time.Duration(capDelay))
			}
			c.Advance(got)
			// Then the dial fails (most often), flaps, or holds for a while.
			var up time.Duration
			switch k := r.Intn(10); {
			case k == 0:
				up = p.ResetAfter + time.Duration(r.Int63n(int64(time.Hour)))
			case k <= 2:
				up = time.Duration(r.Int63n(int64(p.ResetAfter)))
			default:
				continue
			}
			s.Connected()
			c.Advance(up)
			s.Lost()
			m.lost(up)
		}
	}
}

// TestScheduleSpread checks that 1000 clients that lost the same broker at the
// same instant, each with its own jitter source, do not come back in
// lockstep: each delay is spread uniformly over ±Jitter (a standard deviation
// of Jitter/√3 of the mean). TestStormFleetRestart checks what a restarted
// node meets.
func TestScheduleSpread(t *testing.T) {
	const clients = 1000
	tests := []struct {
		name         string
		failedDials  int
		bucket       time.Duration
		maxInBucket  float64 // fraction of clients in the fullest bucket
		minStdOnMean float64
	}{
		// After one failure the default delays span only [60ms, 140ms], so a
		// 2 ms bucket holds about 2.5% of perfectly uniform draws.
		{name: "after 1 failed dial, 2ms buckets", failedDials: 1, bucket: 2 * time.Millisecond, maxInBucket: 0.05, minStdOnMean: 0.2},
		// After ten they span [310ms, 720ms].
		{name: "after 10 failed dials, 10ms buckets", failedDials: 10, bucket: 10 * time.Millisecond, maxInBucket: 0.05, minStdOnMean: 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delays := make([]float64, clients)
			for i := range delays {
				s, _ := seeded(t, Policy{}, int64(i))
				mustNext(t, s) // the first, immediate dial
				var d time.Duration
				for f := 0; f < tt.failedDials; f++ {
					d = mustNext(t, s)
				}
				delays[i] = float64(d)
			}
			var sum, sumSq float64
			buckets := map[int64]int{}
			for _, d := range delays {
				sum += d
				buckets[int64(d)/int64(tt.bucket)]++
			}
			mean := sum / clients
			for _, d := range delays {
				sumSq += (d - mean) * (d - mean)
			}
			std := math.Sqrt(sumSq / clients)
			largest := 0
			for _, n := range buckets {
				largest = max(largest, n)
			}
			sort.Float64s(delays)
			t.Logf("%d clients: min %v, max %v, mean %v, stddev %v (%.3f of mean), largest %v bucket %d (%.1f%%)",
				clients, time.Duration(delays[0]), time.Duration(delays[clients-1]), time.Duration(mean),
				time.Duration(std), std/mean, tt.bucket, largest, 100*float64(largest)/clients)
			if std/mean < tt.minStdOnMean {
				t.Errorf("stddev/mean = %.3f, want >= %.2f", std/mean, tt.minStdOnMean)
			}
			if frac := float64(largest) / clients; frac > tt.maxInBucket {
				t.Errorf("%.1f%% of clients in one %v bucket, want <= %.0f%%", 100*frac, tt.bucket, 100*tt.maxInBucket)
			}
		})
	}
}

func BenchmarkScheduleNext(b *testing.B) {
	s, err := NewSchedule(Policy{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScheduleFlap(b *testing.B) {
	s, err := NewSchedule(Policy{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Next(); err != nil {
			b.Fatal(err)
		}
		s.Connected()
		s.Lost()
	}
}
