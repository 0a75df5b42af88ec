package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

func TestParseDemoFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    demoConfig
		wantErr error
	}{
		{"defaults", nil, demoConfig{duration: defaultDemoDuration, rate: defaultDemoRate, faults: allDemoFaults}, nil},
		{"all flags", []string{"-duration", "12s", "-rate", "50", "-faults", "stop, partition", "-v"},
			demoConfig{duration: 12 * time.Second, rate: 50, faults: []demoFault{demoFaultStop, demoFaultPartition}, verbose: true}, nil},
		{"no faults", []string{"-faults", "none"}, demoConfig{duration: defaultDemoDuration, rate: defaultDemoRate}, nil},
		{"empty faults", []string{"-faults", ""}, demoConfig{duration: defaultDemoDuration, rate: defaultDemoRate}, nil},
		{"repeated fault", []string{"-faults", "close,close"},
			demoConfig{duration: defaultDemoDuration, rate: defaultDemoRate, faults: []demoFault{demoFaultClose, demoFaultClose}}, nil},
		{"unknown fault", []string{"-faults", "close,flood"}, demoConfig{}, errDemoUsage},
		{"short duration", []string{"-duration", "500ms"}, demoConfig{}, errDemoUsage},
		{"zero rate", []string{"-rate", "0"}, demoConfig{}, errDemoUsage},
		{"huge rate", []string{"-rate", "1000000"}, demoConfig{}, errDemoUsage},
		{"unknown flag", []string{"-nope"}, demoConfig{}, errDemoUsage},
		{"stray argument", []string{"amqp://x"}, demoConfig{}, errDemoUsage},
		{"help", []string{"-h"}, demoConfig{}, flag.ErrHelp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDemoFlags(tt.args, io.Discard)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFaultNamesRoundTrip(t *testing.T) {
	for _, k := range allDemoFaults {
		t.Run(k.String(), func(t *testing.T) {
			got, ok := demoFaultByName(k.String())
			if !ok || got != k {
				t.Errorf("faultByName(%q) = %v, %v", k.String(), got, ok)
			}
			if k.action() == k.String() {
				t.Errorf("%v has no action text", k)
			}
		})
	}
}
