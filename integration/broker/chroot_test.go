package broker

import (
	"context"
	"os"
	"slices"
	"testing"
)

func TestRootCommand(t *testing.T) {
	ctx := context.Background()
	host := rootCommand(ctx, "", "/usr/bin/epmd", "-port", "1")
	if want := []string{"/usr/bin/epmd", "-port", "1"}; !slices.Equal(host.Args, want) || host.Cancel == nil {
		t.Errorf("on the host: %q, want %q", host.Args, want)
	}
	in := rootCommand(ctx, "/var/cache/root", "/usr/bin/epmd", "-port", "1")
	want := []string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", chrootScript, "sh",
		"/var/cache/root", os.TempDir(), "/usr/bin/epmd", "-port", "1"}
	if !slices.Equal(in.Args, want) {
		t.Errorf("in a root: %q, want %q", in.Args, want)
	}
}
