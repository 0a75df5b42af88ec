package reconnect

import (
	"math"
	"math/rand"
	"time"
)

// simDown is a broker that refuses connections from 0 until up, and is
// healthy after: a supervisor connected before 0 loses its connection at 0.
type simDown struct{ up time.Duration }

func (b simDown) dial(t time.Duration) (bool, time.Duration) {
	if t < b.up {
		return false, t + simRefuseIn
	}
	return true, t + simHandshake
}

func (b simDown) lost(time.Duration) time.Duration { return simNever }

// simFlapper accepts every dial and drops the connection within closeIn of
// it becoming ready, at a time drawn from r.
type simFlapper struct {
	closeIn time.Duration
	r       *rand.Rand
}

func (b simFlapper) dial(t time.Duration) (bool, time.Duration) { return true, t + simHandshake }

func (b simFlapper) lost(t time.Duration) time.Duration {
	return t + time.Duration(b.r.Int63n(int64(b.closeIn)))
}

// simKiller accepts every dial and kills each connection every seconds
// after it became ready, kills times, then leaves it alone.
type simKiller struct {
	every time.Duration
	kills *int
}

func (b simKiller) dial(t time.Duration) (bool, time.Duration) { return true, t + simHandshake }

func (b simKiller) lost(t time.Duration) time.Duration {
	if *b.kills == 0 {
		return simNever
	}
	*b.kills--
	return t + b.every
}

// Kinds of simulated faults.
const (
	simKill    = "kill"    // the broker closes the connection; dials work at once
	simRefused = "refused" // stop_app or a node restart: the connection drops, dials are refused
	simSilent  = "silent"  // a partition: nothing arrives, dials hang until it heals
)

// simFault is one fault of a simSweep; start and end are set when it begins.
type simFault struct {
	kind       string
	dur        time.Duration
	start, end time.Duration
	noticed    bool          // the supervisor lost its connection to this fault
	ready      time.Duration // when it was ready again, if noticed
}

// simSweep is a broker that suffers plan's faults in order, each after a
// healthy time drawn log-uniformly from [gapMin, gapMax] counted from the
// moment the supervisor is ready again (or from the end of a fault it never
// noticed). A partition is noticed after a time drawn from [detectMin,
// detectMax] if it lasts that long.
type simSweep struct {
	r                    *rand.Rand
	plan                 []simFault
	gapMin, gapMax       time.Duration
	detectMin, detectMax time.Duration

	next int       // index of the next fault to begin
	cur  *simFault // the latest fault begun
}

func (b *simSweep) dial(t time.Duration) (bool, time.Duration) {
	f := b.cur
	if f == nil || t < f.start || t >= f.end {
		return true, t + simHandshake
	}
	switch f.kind {
	case simRefused:
		return false, t + simRefuseIn
	case simSilent:
		// The proxy holds the handshake; it completes when the partition
		// heals, unless the dial timeout comes first.
		if f.end <= t+simDialLimit {
			return true, f.end + simHandshake
		}
		return false, t + simDialLimit
	}
	return true, t + simHandshake
}

func (b *simSweep) lost(t time.Duration) time.Duration {
	if f := b.cur; f != nil && f.noticed && f.ready == 0 {
		f.ready = t
	}
	for b.next < len(b.plan) {
		f := &b.plan[b.next]
		b.next++
		base := t
		if b.cur != nil {
			base = max(t, b.cur.end)
		}
		f.start = base + b.gap()
		f.end = f.start + f.dur
		b.cur = f
		if f.kind != simSilent {
			f.noticed = true
			return f.start
		}
		detect := b.detectMin + time.Duration(b.r.Int63n(int64(b.detectMax-b.detectMin)+1))
		if detect < f.dur {
			f.noticed = true
			return f.start + detect
		}
	}
	return simNever
}

func (b *simSweep) gap() time.Duration {
	lo, hi := math.Log(float64(b.gapMin)), math.Log(float64(b.gapMax))
	return time.Duration(math.Exp(lo + b.r.Float64()*(hi-lo)))
}
