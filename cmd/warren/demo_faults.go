package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/warrenmq/warren/integration/broker"
)

// demoFault is one fault the demo injects.
type demoFault int

const (
	// demoFaultClose makes the broker close the demo's connections (320
	// CONNECTION_FORCED) with rabbitmqctl.
	demoFaultClose demoFault = iota
	// demoFaultPartition blackholes the fault proxy: bytes are held both ways
	// and the sockets stay open, so only heartbeats can tell.
	demoFaultPartition
	// demoFaultAlarm raises the broker's memory alarm: it blocks publishing
	// connections until the alarm clears.
	demoFaultAlarm
	// demoFaultStop stops the RabbitMQ application (stop_app) and starts it again.
	demoFaultStop
)

// allDemoFaults is the default -faults list, in the default order.
var allDemoFaults = []demoFault{demoFaultClose, demoFaultPartition, demoFaultAlarm, demoFaultStop}

// String returns the fault's -faults name.
func (k demoFault) String() string {
	switch k {
	case demoFaultClose:
		return "close"
	case demoFaultPartition:
		return "partition"
	case demoFaultAlarm:
		return "alarm"
	case demoFaultStop:
		return "stop"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// action says what injecting the fault does, for the demo's log.
func (k demoFault) action() string {
	switch k {
	case demoFaultClose:
		return "rabbitmqctl close_all_user_connections"
	case demoFaultPartition:
		return "fault proxy blackhole: bytes held both ways, sockets open"
	case demoFaultAlarm:
		return "memory alarm on (vm_memory_high_watermark 0)"
	case demoFaultStop:
		return "rabbitmqctl stop_app"
	}
	return k.String()
}

// undoAction says what clearing the fault does.
func (k demoFault) undoAction() string {
	switch k {
	case demoFaultPartition:
		return "healed: held bytes delivered"
	case demoFaultAlarm:
		return "memory alarm off"
	case demoFaultStop:
		return "rabbitmqctl start_app done"
	}
	return ""
}

// undoVerb names the clearing step, for the status line.
func (k demoFault) undoVerb() string {
	switch k {
	case demoFaultPartition:
		return "healing"
	case demoFaultAlarm:
		return "clearing the alarm"
	case demoFaultStop:
		return "start_app"
	}
	return "done"
}

func demoFaultByName(name string) (demoFault, bool) {
	for _, k := range allDemoFaults {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

// demoPartitioner is the part of the fault proxy the demo drives.
type demoPartitioner interface {
	Blackhole()
	Heal()
}

// demoInjector injects and clears faults, and remembers which are on so that
// every exit path (Ctrl-C included) can clear them: a broker left with its
// memory alarm on or its application stopped would outlive the demo when it
// was reached through AMQP_URL.
type demoInjector struct {
	faults broker.Faults
	proxy  demoPartitioner
	// user is the demo's own broker user, whose connections a forced close
	// kills; "" when none could be created.
	user string

	mu     sync.Mutex
	active map[demoFault]bool
}

func newDemoInjector(f broker.Faults, p demoPartitioner, user string) *demoInjector {
	return &demoInjector{faults: f, proxy: p, user: user, active: make(map[demoFault]bool)}
}

// inject turns fault k on. A fault that stays on (all but close) is marked
// active before the call, so that a call cut short still gets cleared.
func (in *demoInjector) inject(ctx context.Context, k demoFault) error {
	switch k {
	case demoFaultClose:
		if in.user == "" {
			return fmt.Errorf("%w: close: the demo could not create a broker user of its own", broker.ErrUnsupported)
		}
		return in.faults.CloseUserConnections(ctx, in.user)
	case demoFaultPartition:
		in.setActive(k, true)
		in.proxy.Blackhole()
		return nil
	case demoFaultAlarm:
		in.setActive(k, true)
		return in.faults.SetMemoryAlarm(ctx, true)
	case demoFaultStop:
		in.setActive(k, true)
		return in.faults.StopApp(ctx)
	}
	return fmt.Errorf("warren demo: unknown fault %v", k)
}

// clear turns fault k off; it is a no-op for a fault that is not on.
func (in *demoInjector) clear(ctx context.Context, k demoFault) error {
	if !in.isActive(k) {
		return nil
	}
	var err error
	switch k {
	case demoFaultPartition:
		in.proxy.Heal()
	case demoFaultAlarm:
		err = in.faults.SetMemoryAlarm(ctx, false)
	case demoFaultStop:
		err = in.faults.StartApp(ctx)
	}
	if err != nil {
		return fmt.Errorf("clear %v: %w", k, err)
	}
	in.setActive(k, false)
	return nil
}

// clearAll clears every active fault, cheapest first, and joins the errors;
// it runs every step even when one fails.
func (in *demoInjector) clearAll(ctx context.Context) error {
	var errs []error
	for _, k := range []demoFault{demoFaultPartition, demoFaultAlarm, demoFaultStop} {
		errs = append(errs, in.clear(ctx, k))
	}
	return errors.Join(errs...)
}

// anyActive reports whether a fault is still on.
func (in *demoInjector) anyActive() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, on := range in.active {
		if on {
			return true
		}
	}
	return false
}

func (in *demoInjector) setActive(k demoFault, on bool) {
	in.mu.Lock()
	in.active[k] = on
	in.mu.Unlock()
}

func (in *demoInjector) isActive(k demoFault) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.active[k]
}
