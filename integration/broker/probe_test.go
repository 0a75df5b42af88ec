package broker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeEngine serves handler on a unix socket in a temporary directory and
// returns the socket's path.
func fakeEngine(t *testing.T, handler http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: shortTestTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return sock
}

func TestProbeDocker(t *testing.T) {
	ok := fakeEngine(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_ping" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("OK"))
	}))
	broken := fakeEngine(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	stuck := make(chan struct{})
	hangs := fakeEngine(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		<-stuck
	}))
	t.Cleanup(func() { close(stuck) }) // runs before the servers close

	tests := []struct {
		name       string
		dockerHost string
		tls        bool
		wantOK     bool
	}{
		{"engine answers", "unix://" + ok, false, true},
		{"engine errors", "unix://" + broken, false, false},
		{"engine hangs", "unix://" + hangs, false, false},
		{"no socket", "unix://" + filepath.Join(t.TempDir(), "missing.sock"), false, false},
		{"tcp with TLS is not probed", "tcp://127.0.0.1:2376", true, false},
		{"unknown scheme", "ssh://me@host", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := probeDocker(context.Background(), tt.dockerHost, tt.tls)
			if elapsed := time.Since(start); elapsed > dockerProbeTimeout+shortTestTimeout/2 {
				t.Errorf("probeDocker took %v, want it bounded by %v", elapsed, dockerProbeTimeout)
			}
			if tt.wantOK {
				if err != nil {
					t.Fatalf("probeDocker() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, errNoDockerEngine) {
				t.Fatalf("probeDocker() = %v, want errNoDockerEngine", err)
			}
		})
	}
}

func TestDockerEndpoint(t *testing.T) {
	tests := []struct {
		host                  string
		wantNetwork, wantAddr string
	}{
		{"", "unix", defaultDockerSocket},
		{"unix:///run/user/1000/docker.sock", "unix", "/run/user/1000/docker.sock"},
		{"tcp://10.0.0.2:2375", "tcp", "10.0.0.2:2375"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			network, addr, err := dockerEndpoint(tt.host, false)
			if err != nil || network != tt.wantNetwork || addr != tt.wantAddr {
				t.Errorf("dockerEndpoint(%q) = %q, %q, %v; want %q, %q", tt.host, network, addr, err, tt.wantNetwork, tt.wantAddr)
			}
		})
	}
	if _, _, err := dockerEndpoint("tcp://h:2376", true); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("dockerEndpoint with TLS = %v, want an error naming TLS", err)
	}
}
