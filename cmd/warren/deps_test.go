package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestLinksNoDocker: the CLI must build without testcontainers-go or the
// Docker client (they live in integration/broker/docker, which only tests
// import), so `go install .../cmd/warren` pulls neither. A test binary's
// build info lists the modules of the package under test, not those only
// its tests import: what the installed CLI links.
func TestLinksNoDocker(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info in the test binary")
	}
	if len(bi.Deps) == 0 {
		t.Fatal("build info lists no modules; cannot check")
	}
	for _, d := range bi.Deps {
		for _, banned := range []string{"github.com/testcontainers/", "github.com/docker/docker"} {
			if strings.HasPrefix(d.Path, banned) {
				t.Errorf("the CLI links %s %s", d.Path, d.Version)
			}
		}
	}
}
