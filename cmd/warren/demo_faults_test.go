package main

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/warrenmq/warren/integration/broker"
)

// demoFakeFaults records the fault calls the injector makes; methods the demo
// does not use panic through the nil embedded interface.
type demoFakeFaults struct {
	broker.Faults
	mu    sync.Mutex
	calls []string
	fail  map[string]error
}

func (f *demoFakeFaults) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.fail[call]
}

func (f *demoFakeFaults) CloseUserConnections(_ context.Context, user string) error {
	return f.record("close " + user)
}

func (f *demoFakeFaults) SetMemoryAlarm(_ context.Context, on bool) error {
	if on {
		return f.record("alarm on")
	}
	return f.record("alarm off")
}

func (f *demoFakeFaults) StopApp(context.Context) error  { return f.record("stop_app") }
func (f *demoFakeFaults) StartApp(context.Context) error { return f.record("start_app") }

type demoFakeProxy struct{ f *demoFakeFaults }

func (p demoFakeProxy) Blackhole() { _ = p.f.record("blackhole") }
func (p demoFakeProxy) Heal()      { _ = p.f.record("heal") }

func TestInjectorInjectsAndClears(t *testing.T) {
	tests := []struct {
		kind demoFault
		user string
		want []string
	}{
		{demoFaultClose, "demo", []string{"close demo"}},
		{demoFaultPartition, "demo", []string{"blackhole", "heal"}},
		{demoFaultAlarm, "demo", []string{"alarm on", "alarm off"}},
		{demoFaultStop, "demo", []string{"stop_app", "start_app"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			f := &demoFakeFaults{}
			in := newDemoInjector(f, demoFakeProxy{f}, tt.user)
			ctx := context.Background()
			if err := in.inject(ctx, tt.kind); err != nil {
				t.Fatal(err)
			}
			if err := in.clear(ctx, tt.kind); err != nil {
				t.Fatal(err)
			}
			if err := in.clearAll(ctx); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.calls, tt.want) {
				t.Errorf("calls %q, want %q", f.calls, tt.want)
			}
			if in.anyActive() {
				t.Error("a fault is still active after clear")
			}
		})
	}
}

// TestInjectorClearsFaultsCutShort: a fault whose injection failed part-way
// (Ctrl-C during stop_app) may be on anyway, so clearAll must clear it.
func TestInjectorClearsFaultsCutShort(t *testing.T) {
	f := &demoFakeFaults{fail: map[string]error{"stop_app": context.Canceled}}
	in := newDemoInjector(f, demoFakeProxy{f}, "demo")
	ctx := context.Background()
	if err := in.inject(ctx, demoFaultPartition); err != nil {
		t.Fatal(err)
	}
	if err := in.inject(ctx, demoFaultStop); !errors.Is(err, context.Canceled) {
		t.Fatalf("inject stop: %v", err)
	}
	if !in.anyActive() {
		t.Fatal("no fault active")
	}
	if err := in.clearAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"blackhole", "stop_app", "heal", "start_app"}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}
}

func TestInjectorKeepsFaultActiveWhenClearFails(t *testing.T) {
	f := &demoFakeFaults{fail: map[string]error{"alarm off": errors.New("node down")}}
	in := newDemoInjector(f, demoFakeProxy{f}, "demo")
	ctx := context.Background()
	if err := in.inject(ctx, demoFaultAlarm); err != nil {
		t.Fatal(err)
	}
	if err := in.clearAll(ctx); err == nil {
		t.Fatal("clearAll hid the failure")
	}
	if !in.anyActive() {
		t.Error("the alarm is no longer marked active though clearing it failed")
	}
}

func TestInjectorCloseNeedsUser(t *testing.T) {
	f := &demoFakeFaults{}
	in := newDemoInjector(f, demoFakeProxy{f}, "")
	if err := in.inject(context.Background(), demoFaultClose); !errors.Is(err, broker.ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("calls %q, want none", f.calls)
	}
}
