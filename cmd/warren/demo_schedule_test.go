package main

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanFaults(t *testing.T) {
	s := time.Second
	tests := []struct {
		name  string
		d     time.Duration
		kinds []demoFault
		want  []demoFaultSlot
	}{
		{"none", 40 * s, nil, nil},
		{"default", 40 * s, allDemoFaults, []demoFaultSlot{
			{demoFaultClose, 2 * s, 0},
			{demoFaultPartition, 12 * s, 3 * s},
			{demoFaultAlarm, 22 * s, 3 * s},
			{demoFaultStop, 32 * s, 0},
		}},
		{"one fault gets the whole duration", 20 * s, []demoFault{demoFaultPartition}, []demoFaultSlot{
			{demoFaultPartition, 2 * s, 3 * s},
		}},
		{"short slots shrink the lead, holds keep their floor", 4 * s, []demoFault{demoFaultAlarm, demoFaultPartition}, []demoFaultSlot{
			{demoFaultAlarm, 400 * time.Millisecond, s},
			{demoFaultPartition, 2*s + 400*time.Millisecond, 2 * s},
		}},
		{"order is the caller's", 20 * s, []demoFault{demoFaultStop, demoFaultClose}, []demoFaultSlot{
			{demoFaultStop, 2 * s, 0},
			{demoFaultClose, 12 * s, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planDemoFaults(tt.d, tt.kinds)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("planFaults(%v, %v) =\n %+v\nwant\n %+v", tt.d, tt.kinds, got, tt.want)
			}
		})
	}
}

func TestHoldForStaysWithinBounds(t *testing.T) {
	for _, slot := range []time.Duration{0, time.Second, 7 * time.Second, time.Hour} {
		for _, k := range allDemoFaults {
			h := demoHoldFor(k, slot)
			switch k {
			case demoFaultPartition:
				if h < demoMinPartitionHold || h > demoMaxPartitionHold {
					t.Errorf("partition hold %v for slot %v", h, slot)
				}
			case demoFaultAlarm:
				if h < demoMinAlarmHold || h > demoMaxAlarmHold {
					t.Errorf("alarm hold %v for slot %v", h, slot)
				}
			default:
				if h != 0 {
					t.Errorf("%v hold %v, want 0", k, h)
				}
			}
		}
	}
}
