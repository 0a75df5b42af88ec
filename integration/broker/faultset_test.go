package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestFaultsUnsupported(t *testing.T) {
	none := &faults{noCtl: "set RABBITMQ_NODENAME", noMgmt: "set AMQP_MGMT_URL", noRestart: "not ours"}
	mgmtOnly := &faults{mgmt: &mgmtClient{}, noCtl: "set RABBITMQ_NODENAME", noRestart: "not ours"}
	ctx := context.Background()
	calls := map[string]func(f *faults) error{
		"CloseConnection":      func(f *faults) error { return f.CloseConnection(ctx, "x") },
		"CloseUserConnections": func(f *faults) error { return f.CloseUserConnections(ctx, "u") },
		"CloseAllConnections":  func(f *faults) error { return f.CloseAllConnections(ctx) },
		"StopApp":              func(f *faults) error { return f.StopApp(ctx) },
		"StartApp":             func(f *faults) error { return f.StartApp(ctx) },
		"Restart":              func(f *faults) error { return f.Restart(ctx) },
		"SetMemoryAlarm":       func(f *faults) error { return f.SetMemoryAlarm(ctx, true) },
		"AddUser":              func(f *faults) error { return f.AddUser(ctx, "u", "p") },
		"DeleteUser":           func(f *faults) error { return f.DeleteUser(ctx, "u") },
		"AddVhost":             func(f *faults) error { return f.AddVhost(ctx, "v") },
		"DeleteVhost":          func(f *faults) error { return f.DeleteVhost(ctx, "v") },
		"SetPermissions":       func(f *faults) error { return f.SetPermissions(ctx, "v", "u") },
		"ListConnections":      func(f *faults) error { _, err := f.ListConnections(ctx); return err },
		"Eval":                 func(f *faults) error { _, err := f.Eval(ctx, "1."); return err },
	}
	tests := []struct {
		name        string
		f           *faults
		unsupported []string
	}{
		{"no route", none, []string{"CloseConnection", "CloseUserConnections", "CloseAllConnections", "StopApp",
			"StartApp", "Restart", "SetMemoryAlarm", "AddUser", "DeleteUser", "AddVhost", "DeleteVhost",
			"SetPermissions", "ListConnections", "Eval"}},
		{"management only", mgmtOnly, []string{"StopApp", "StartApp", "Restart", "SetMemoryAlarm", "Eval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range tt.unsupported {
				err := calls[name](tt.f)
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("%s = %v, want ErrUnsupported", name, err)
					continue
				}
				if !strings.Contains(err.Error(), name) {
					t.Errorf("%s error %q does not name the fault", name, err)
				}
				if name != "Restart" && !strings.Contains(err.Error(), "RABBITMQ_NODENAME") {
					t.Errorf("%s error %q does not say why", name, err)
				}
			}
			if got := tt.f.unavailable(); len(got) != len(tt.unsupported) {
				t.Errorf("unavailable() = %q, want %d faults", got, len(tt.unsupported))
			}
		})
	}
}

func TestFaultsNoConnection(t *testing.T) {
	f := &faults{ctl: newCtl(&fakeRunner{answer: func([]string) (string, string, error) { return "0", "", nil }})}
	if err := f.CloseConnection(context.Background(), "nobody"); !errors.Is(err, ErrNoConnection) {
		t.Errorf("CloseConnection with no match = %v, want ErrNoConnection", err)
	}
}
