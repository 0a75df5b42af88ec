package reconnect

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"
)

// TestSweepExtraDowntime checks the fault-duration targets on the
// default policy in simulated time: for kills and for refused (stop_app,
// node restart) and silent (partition) faults of 1, 5, 15 and 60 s, injected
// in shuffled sequences with 2 to 20 s of health in between, the extra
// downtime after a fault ends (fault end → ready) is at most max(1 s, 0.2 f)
// at the median and max(2 s, 0.35 f) at the maximum, over every sequence.
func TestSweepExtraDowntime(t *testing.T) {
	const sequences = 300
	durations := []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, time.Minute}
	for _, hb := range []time.Duration{simHeartbeat, 10 * time.Second} {
		t.Run(fmt.Sprintf("heartbeat %v", hb), func(t *testing.T) {
			extra := map[string][]time.Duration{}
			for seed := int64(0); seed < sequences; seed++ {
				r := rand.New(rand.NewSource(seed))
				plan := []simFault{{kind: simKill}}
				for _, kind := range []string{simRefused, simSilent} {
					for _, d := range durations {
						plan = append(plan, simFault{kind: kind, dur: d})
					}
				}
				r.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
				b := &simSweep{r: r, plan: plan, gapMin: 2 * time.Second, gapMax: 20 * time.Second,
					// warren's dead-peer monitor with the default limit of 5/4
					// of the heartbeat: 3/5 of it on an idle connection.
					detectMin: hb * 3 / 4, detectMax: hb * 5 / 4}
				s, c := seeded(t, Policy{}, seed)
				simulate(t, s, c, b, simHorizon)
				for _, f := range plan {
					if !f.noticed {
						continue // a partition shorter than detection: no outage
					}
					if f.ready == 0 {
						t.Fatalf("seed %d: never ready after %s %v", seed, f.kind, f.dur)
					}
					cell := fmt.Sprintf("%s %v", f.kind, f.dur)
					extra[cell] = append(extra[cell], f.ready-f.end)
				}
			}
			for _, f := range []simFault{{kind: simKill}} {
				checkSweepCell(t, f, extra)
			}
			for _, kind := range []string{simRefused, simSilent} {
				for _, d := range durations {
					checkSweepCell(t, simFault{kind: kind, dur: d}, extra)
				}
			}
		})
	}
}

func checkSweepCell(t *testing.T, f simFault, extra map[string][]time.Duration) {
	t.Helper()
	cell := fmt.Sprintf("%s %v", f.kind, f.dur)
	xs := extra[cell]
	if len(xs) == 0 {
		t.Logf("%-14s never noticed", cell)
		return
	}
	slices.Sort(xs)
	med, most := xs[len(xs)/2], xs[len(xs)-1]
	wantMed := max(time.Second, f.dur/5)
	wantMax := max(2*time.Second, time.Duration(0.35*float64(f.dur)))
	t.Logf("%-14s %3d outages: extra downtime median %v (bound %v), max %v (bound %v)",
		cell, len(xs), med.Round(time.Millisecond), wantMed, most.Round(time.Millisecond), wantMax)
	if med > wantMed {
		t.Errorf("%s: median extra downtime %v, want <= %v", cell, med, wantMed)
	}
	if most > wantMax {
		t.Errorf("%s: max extra downtime %v, want <= %v", cell, most, wantMax)
	}
}
