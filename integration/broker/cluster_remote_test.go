package broker

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// startTestRemote starts a private epmd and a remote node on it, both
// stopped at cleanup, and returns the node and its name.
func startTestRemote(t *testing.T) (*remote, string) {
	t.Helper()
	erl, err := exec.LookPath("erl")
	if err != nil {
		t.Fatalf("the remote node needs erl: %v", err)
	}
	epmdBin, err := exec.LookPath("epmd")
	if err != nil {
		t.Fatalf("the remote node needs epmd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	epmd := &localNode{epmdBin: epmdBin, dir: dir, epmdPort: ports[0]}
	if err := epmd.startEpmd(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := epmd.stopEpmd(); err != nil {
			t.Errorf("stopping epmd: %v", err)
		}
	})
	name := "warren-ctl-test-" + randomHex(4) + "@localhost"
	rm, err := startRemote(ctx, "", erl, dir, name, randomHex(16), epmd.epmdPort)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after epmd's, so it runs first: the node unregisters
	// from a live epmd.
	t.Cleanup(func() {
		if err := rm.close(); err != nil {
			t.Errorf("closing the remote node: %v", err)
		}
	})
	return rm, name
}

func TestRemoteCall(t *testing.T) {
	rm, name := startTestRemote(t)
	ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
	defer cancel()
	tests := []struct {
		name           string
		node, mod, fun string
		want           string // a prefix of the printed result
		wantOK         bool   // callOK succeeds
	}{
		{"own node", name, "erlang", "node", "'" + name + "'", false},
		{"ok result", name, "io", "nl", "ok", true},
		{"unknown node", "nobody-" + randomHex(4) + "@localhost", "erlang", "node", "{badrpc,nodedown}", false},
		{"undefined function", name, "erlang", "no_such_function", "{badrpc,{'EXIT',{undef,", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rm.call(ctx, tt.node, tt.mod, tt.fun)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("call = %q, want prefix %q", got, tt.want)
			}
			if err := rm.callOK(ctx, tt.node, tt.mod, tt.fun); (err == nil) != tt.wantOK {
				t.Errorf("callOK = %v, want success %v", err, tt.wantOK)
			}
		})
	}
}

func TestRemoteCallsAfterClose(t *testing.T) {
	rm, name := startTestRemote(t)
	if err := rm.close(); err != nil {
		t.Fatal(err)
	}
	if !rm.p.exited() {
		t.Error("remote node still running after close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
	defer cancel()
	if _, err := rm.call(ctx, name, "erlang", "node"); err == nil {
		t.Error("call after close succeeded")
	}
}
