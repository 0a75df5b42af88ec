package main

import "time"

// Shape of the fault schedule. Each fault gets an equal slot of -duration:
// some steady traffic first, the fault, then recovery and steady traffic
// again before the next slot.
const (
	demoMaxLead          = 2 * time.Second
	demoMaxPartitionHold = 3 * time.Second
	demoMinPartitionHold = 2 * time.Second // longer than heartbeat detection (1.25 s) so warren must act
	demoMaxAlarmHold     = 3 * time.Second
	demoMinAlarmHold     = time.Second
)

// demoFaultSlot is one planned fault.
type demoFaultSlot struct {
	kind demoFault
	// at is when to inject, from the start of publishing.
	at time.Duration
	// hold is how long the fault stays on before it is cleared; 0 for a
	// forced close (nothing to clear) and for stop_app, which start_app
	// follows at once (stopping and starting take seconds of their own).
	hold time.Duration
}

// planDemoFaults spreads kinds evenly over d. The plan is only a target: the
// runner never injects a fault before the previous one has recovered, so on
// a slow machine or with a short d the run takes longer than d.
func planDemoFaults(d time.Duration, kinds []demoFault) []demoFaultSlot {
	if len(kinds) == 0 {
		return nil
	}
	slot := d / time.Duration(len(kinds))
	lead := min(demoMaxLead, slot/5)
	plan := make([]demoFaultSlot, len(kinds))
	for i, k := range kinds {
		plan[i] = demoFaultSlot{kind: k, at: time.Duration(i)*slot + lead, hold: demoHoldFor(k, slot)}
	}
	return plan
}

// demoHoldFor is how long fault k stays on in a slot of length slot: about a
// third of it, within the fault's bounds.
func demoHoldFor(k demoFault, slot time.Duration) time.Duration {
	third := slot * 3 / 10
	switch k {
	case demoFaultPartition:
		return demoClamp(third, demoMinPartitionHold, demoMaxPartitionHold)
	case demoFaultAlarm:
		return demoClamp(third, demoMinAlarmHold, demoMaxAlarmHold)
	}
	return 0
}

func demoClamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}
