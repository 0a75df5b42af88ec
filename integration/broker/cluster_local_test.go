package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartLocalClusterFailureCleansUp(t *testing.T) {
	const nodes = 3
	tests := []struct {
		name         string
		server       string
		wantAttempts int
	}{
		{"nodes crash", `echo attempt >> "$FAKE_ATTEMPTS"; echo "boot failed: boom"; exit 1`, nodes},
		{"port taken is retried", `echo attempt >> "$FAKE_ATTEMPTS"; echo "{listen_error,eaddrinuse}"; exit 1`, nodes * bootAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			attempts := filepath.Join(t.TempDir(), "attempts")
			t.Setenv("FAKE_ATTEMPTS", attempts)
			scripts, epmd := fakeScripts(t, tt.server)
			env := environment{ServerPath: filepath.Join(scripts, "rabbitmq-server"), EpmdPath: epmd}

			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			c, err := startLocalCluster(ctx, env, nodes, nil)
			if c != nil || !errors.Is(err, ErrBootFailed) {
				t.Fatalf("startLocalCluster = %v, %v; want ErrBootFailed", c, err)
			}
			data, _ := os.ReadFile(attempts)
			if got := strings.Count(string(data), "attempt"); got != tt.wantAttempts {
				t.Errorf("rabbitmq-server started %d times, want %d", got, tt.wantAttempts)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("cluster directory left behind: %v", left)
			}
		})
	}
}

func TestNewLocalClusterSharesOneCookie(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	lc, err := newLocalCluster("/nonexistent", "/nonexistent/epmd", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lc.close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
		if _, err := os.Stat(lc.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", lc.dir)
		}
	}()
	names := map[string]bool{}
	for _, n := range lc.nodes {
		cookie, err := os.ReadFile(filepath.Join(n.dir, ".erlang.cookie"))
		if err != nil {
			t.Fatal(err)
		}
		if string(cookie) != lc.cookie {
			t.Errorf("node %s has cookie %q, want the cluster's %q", n.name, cookie, lc.cookie)
		}
		if filepath.Dir(n.dir) != lc.dir {
			t.Errorf("node directory %s is not inside the cluster's %s", n.dir, lc.dir)
		}
		names[n.name] = true
	}
	if len(names) != 3 {
		t.Errorf("node names %v are not distinct", names)
	}
}
