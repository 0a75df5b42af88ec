package broker

import (
	"context"
	"fmt"
	"sync/atomic"
)

// faults is the Faults that Find hands out. It routes each fault to
// rabbitmqctl when it has one, else to the management API, else it returns
// ErrUnsupported with the reason recorded by Find.
type faults struct {
	ctl     *ctl        // nil when rabbitmqctl cannot reach the node
	mgmt    *mgmtClient // nil when no management API is known
	restart func(ctx context.Context) error

	noCtl     string // why ctl is nil
	noMgmt    string // why mgmt is nil
	noRestart string // why restart is nil

	closed atomic.Bool
}

var _ Faults = (*faults)(nil)

func (f *faults) markClosed() { f.closed.Store(true) }

// closeIdle drops the management client's idle keep-alive connections so no
// transport goroutine outlives the Broker.
func (f *faults) closeIdle() {
	if f.mgmt != nil {
		f.mgmt.closeIdle()
	}
}

// check returns nil if fault can be injected by ctl (or by the management
// API when mgmtOK), else why not.
func (f *faults) check(fault string, mgmtOK bool) error {
	if f.closed.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, fault)
	}
	if f.ctl != nil || (mgmtOK && f.mgmt != nil) {
		return nil
	}
	why := f.noCtl
	if mgmtOK {
		why += "; " + f.noMgmt
	}
	return fmt.Errorf("%w: %s: %s", ErrUnsupported, fault, why)
}

// unavailable lists the faults this set cannot inject, for Find's log line.
func (f *faults) unavailable() []string {
	var out []string
	if f.ctl == nil {
		if f.mgmt == nil {
			out = append(out, "CloseConnection", "CloseUserConnections", "CloseAllConnections",
				"AddUser", "DeleteUser", "AddVhost", "DeleteVhost", "SetPermissions", "ListConnections")
		}
		out = append(out, "StopApp", "StartApp", "SetMemoryAlarm", "Eval")
	}
	if f.restart == nil {
		out = append(out, "Restart")
	}
	return out
}

// CloseConnection implements Faults.
func (f *faults) CloseConnection(ctx context.Context, connectionName string) error {
	if err := f.check("CloseConnection", true); err != nil {
		return err
	}
	var n int
	var err error
	if f.ctl != nil {
		n, err = f.ctl.closeConnection(ctx, connectionName)
	} else {
		n, err = f.mgmt.closeConnection(ctx, connectionName)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: CloseConnection %q", ErrNoConnection, connectionName)
	}
	return nil
}

// CloseUserConnections implements Faults.
func (f *faults) CloseUserConnections(ctx context.Context, user string) error {
	if err := f.check("CloseUserConnections", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.closeUserConnections(ctx, user)
	}
	return f.mgmt.closeUserConnections(ctx, user)
}

// CloseAllConnections implements Faults.
func (f *faults) CloseAllConnections(ctx context.Context) error {
	if err := f.check("CloseAllConnections", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.closeAllConnections(ctx)
	}
	return f.mgmt.closeAllConnections(ctx)
}

// StopApp implements Faults.
func (f *faults) StopApp(ctx context.Context) error {
	if err := f.check("StopApp", false); err != nil {
		return err
	}
	return f.ctl.stopApp(ctx)
}

// StartApp implements Faults.
func (f *faults) StartApp(ctx context.Context) error {
	if err := f.check("StartApp", false); err != nil {
		return err
	}
	return f.ctl.startApp(ctx)
}

// Restart implements Faults.
func (f *faults) Restart(ctx context.Context) error {
	if f.closed.Load() {
		return fmt.Errorf("%w: Restart", ErrClosed)
	}
	if f.restart == nil {
		return fmt.Errorf("%w: Restart: %s", ErrUnsupported, f.noRestart)
	}
	return f.restart(ctx)
}

// SetMemoryAlarm implements Faults.
func (f *faults) SetMemoryAlarm(ctx context.Context, on bool) error {
	if err := f.check("SetMemoryAlarm", false); err != nil {
		return err
	}
	return f.ctl.setMemoryAlarm(ctx, on)
}

// AddUser implements Faults.
func (f *faults) AddUser(ctx context.Context, user, pass string) error {
	if err := f.check("AddUser", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.addUser(ctx, user, pass)
	}
	return f.mgmt.addUser(ctx, user, pass)
}

// DeleteUser implements Faults.
func (f *faults) DeleteUser(ctx context.Context, user string) error {
	if err := f.check("DeleteUser", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.deleteUser(ctx, user)
	}
	return f.mgmt.deleteUser(ctx, user)
}

// AddVhost implements Faults.
func (f *faults) AddVhost(ctx context.Context, vhost string) error {
	if err := f.check("AddVhost", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.addVhost(ctx, vhost)
	}
	return f.mgmt.addVhost(ctx, vhost)
}

// DeleteVhost implements Faults.
func (f *faults) DeleteVhost(ctx context.Context, vhost string) error {
	if err := f.check("DeleteVhost", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.deleteVhost(ctx, vhost)
	}
	return f.mgmt.deleteVhost(ctx, vhost)
}

// SetPermissions implements Faults.
func (f *faults) SetPermissions(ctx context.Context, vhost, user string) error {
	if err := f.check("SetPermissions", true); err != nil {
		return err
	}
	if f.ctl != nil {
		return f.ctl.setPermissions(ctx, vhost, user)
	}
	return f.mgmt.setPermissions(ctx, vhost, user)
}

// ListConnections implements Faults.
func (f *faults) ListConnections(ctx context.Context) ([]Connection, error) {
	if err := f.check("ListConnections", true); err != nil {
		return nil, err
	}
	if f.ctl != nil {
		return f.ctl.listConnections(ctx)
	}
	return f.mgmt.listConnections(ctx)
}

// Eval implements Faults.
func (f *faults) Eval(ctx context.Context, erlangExpr string) (string, error) {
	if err := f.check("Eval", false); err != nil {
		return "", err
	}
	return f.ctl.eval(ctx, erlangExpr)
}
