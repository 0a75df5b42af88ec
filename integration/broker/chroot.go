package broker

import (
	"context"
	"os"
	"os/exec"
)

// chrootScript runs a program in a Debian root: it binds /proc, /dev, /sys
// and the temporary directory into the root, then execs chroot. It runs
// under `unshare --mount --propagation private`, so the mounts exist only in
// a mount namespace of the program's own, which the kernel drops with its
// last process however that ends (Close, SIGINT, SIGKILL of the test
// binary): nothing is ever left mounted on the host, and the cached root is
// never written through a mount that outlived its node. The temporary
// directory is bound at its own path, so a node directory has the same name
// inside the root as outside and the rest of the package need not translate
// paths.
const chrootScript = `set -e
root=$1 tmp=$2
shift 2
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /sys "$root/sys"
mkdir -p "$root$tmp"
mount --bind "$tmp" "$root$tmp"
exec chroot "$root" "$@"`

// rootCommand returns a command that runs name with args in root, a
// directory holding a Debian root, or on the host when root is "". name is
// a path inside root. ctx cancels the command as in exec.CommandContext.
// The returned command still needs its Env, as the host's are not
// inherited through chroot any differently than through exec.
func rootCommand(ctx context.Context, root, name string, args ...string) *exec.Cmd {
	if root == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	full := append([]string{"--mount", "--propagation", "private",
		"/bin/sh", "-c", chrootScript, "sh", root, os.TempDir(), name}, args...)
	return exec.CommandContext(ctx, "unshare", full...)
}

// nodeOption sets up a localNode before it boots.
type nodeOption func(*localNode)

// inRoot runs the node's programs (epmd, rabbitmq-server, rabbitmqctl) in
// the Debian root root through rootCommand; its scripts and epmd paths are
// then paths inside root.
func inRoot(root string) nodeOption {
	return func(n *localNode) { n.root = root }
}

// withConfig appends lines to the node's rabbitmq.conf.
func withConfig(extra string) nodeOption {
	return func(n *localNode) { n.extraConfig = extra }
}
