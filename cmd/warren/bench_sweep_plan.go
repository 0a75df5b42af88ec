package main

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"time"
)

// Fault kinds of the sweep scenario, as named on the command line and in the
// report.
const (
	sweepKill      = "kill"      // broker-side close (320), a fault of 0 s
	sweepStopApp   = "stop_app"  // refused: rabbitmqctl stop_app, hold, start_app
	sweepPartition = "partition" // silent: the fault proxy holds bytes both ways, then heals
	sweepRestart   = "restart"   // refused: the node process stops and boots again (as long as that takes)
)

// sweepKindsAll are the kinds -sweep-kinds accepts, in table order.
var sweepKindsAll = []string{sweepKill, sweepStopApp, sweepPartition, sweepRestart}

// sweepKindsDefault are the kinds swept unless -sweep-kinds says otherwise;
// a restart takes its own time, about 10 s here, so it is opt-in.
var sweepKindsDefault = []string{sweepKill, sweepStopApp, sweepPartition}

// sweepHeld reports whether faults of kind are held for the configured
// durations; the others last as long as they take.
func sweepHeld(kind string) bool { return kind == sweepStopApp || kind == sweepPartition }

// sweepFault is one fault of the sweep: its kind, how long it is held, and
// how long every contender has been healthy before it starts.
type sweepFault struct {
	kind   string
	dur    time.Duration // 0 for a kill
	health time.Duration // healthy time before the fault
	rep    int           // 1-based repetition of this (kind, dur) cell
}

// cell names the (kind, duration) group the fault's samples belong to.
func (f sweepFault) cell() string { return sweepCell(f.kind, f.dur) }

// sweepCell is the scenario name of a sweep cell's samples, such as
// "sweep stop_app 5s".
func sweepCell(kind string, dur time.Duration) string {
	return fmt.Sprintf("%s %s %v", scenSweep, kind, dur)
}

// proxied reports whether the fault needs the contenders behind a fault
// proxy. Those run in a phase of their own, so that the refused faults meet
// the broker's own listener (ECONNREFUSED), not a proxy that accepts and
// then fails to reach the broker.
func (f sweepFault) proxied() bool { return f.kind == sweepPartition }

// sweepCells returns the (kind, duration) cells the flags ask for: one kill
// cell (a kill has no duration) and one cell per duration of every other kind.
func sweepCells(kinds []string, durs []time.Duration) []sweepFault {
	var cells []sweepFault
	for _, k := range kinds {
		if !sweepHeld(k) {
			cells = append(cells, sweepFault{kind: k})
			continue
		}
		for _, d := range durs {
			cells = append(cells, sweepFault{kind: k, dur: d})
		}
	}
	return cells
}

// sweepPlan returns every fault of the sweep in the order they are injected:
// reps repetitions of each cell, shuffled with seed so that faults of
// different kinds and lengths follow one another, each after a healthy time
// drawn log-uniformly from [gapMin, gapMax] (the 2 to 20 s: short
// gaps are the ones that catch a schedule that carries backoff from one
// fault into the next). The same seed gives the same plan, so the before
// and after runs meet the same sequence.
func sweepPlan(cells []sweepFault, reps int, gapMin, gapMax time.Duration, seed int64) []sweepFault {
	r := rand.New(rand.NewSource(seed))
	var plan []sweepFault
	for rep := 1; rep <= reps; rep++ {
		for _, c := range cells {
			c.rep = rep
			plan = append(plan, c)
		}
	}
	r.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	lo, hi := math.Log(float64(gapMin)), math.Log(float64(gapMax))
	for i := range plan {
		plan[i].health = time.Duration(math.Exp(lo + r.Float64()*(hi-lo))).Round(100 * time.Millisecond)
	}
	return plan
}

// parseSweepDurations reads a comma-separated list of positive durations.
func parseSweepDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bench: -sweep-durations: %q is not a positive duration", f)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: -sweep-durations: empty list")
	}
	return out, nil
}

// sweepBounds are the targets on the extra downtime after a fault of
// length f ends: max(1 s, 0.2 f) at the median and max(2 s, 0.35 f) at the
// maximum.
func sweepBounds(f time.Duration) (median, maximum time.Duration) {
	return max(time.Second, f/5), max(2*time.Second, time.Duration(0.35*float64(f)))
}

// sweepFaultLength is how long a cell's faults lasted as the contenders met
// them, the median over its repetitions; the targets are relative to it.
// For a partition it is the hold itself. For stop_app (and a restart) it runs from the
// first contender's loss to the broker accepting connections again, which
// is longer than the hold by the time stop_app and start_app take: a broker
// that takes 8 s to stop and boot is down for 8 s more than it was held.
func sweepFaultLength(samples []benchSample, cell string) time.Duration {
	byRep := map[int]float64{}
	fromLoss := strings.HasPrefix(cell, scenSweep+" "+sweepStopApp+" ") || strings.HasPrefix(cell, scenSweep+" "+sweepRestart+" ")
	for _, s := range samples {
		if s.Scenario != cell || s.Err != "" {
			continue
		}
		f := s.Metrics["fault_ms"]
		if fromLoss && s.Metrics["losses"] > 0 {
			// From this contender's loss to the fault's end.
			f = s.Metrics["down_ms"] - s.Metrics["extra_ms"]
		}
		byRep[s.Run] = max(byRep[s.Run], f)
	}
	var fs []float64
	for _, f := range byRep {
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		return 0
	}
	return time.Duration(benchMedian(fs) * 1e6)
}
