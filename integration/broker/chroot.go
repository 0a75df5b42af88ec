package broker

import (
	"context"
	"os"
	"os/exec"
)

// chrootScript runs a program in a Debian root: it binds /proc, /dev, /sys
// and the temporary directory into the root, then runs the program through
// chroot. It runs under `unshare --mount --propagation private`, so the
// mounts exist only in a mount namespace of the program's own, which the
// kernel drops with its last process however that ends (Close, SIGINT,
// SIGKILL of the test binary): nothing is ever left mounted on the host,
// and the cached root is never written through a mount that outlived its
// node. The temporary directory is bound at its own path, so a node
// directory has the same name inside the root as outside and the rest of
// the package need not translate paths.
//
// The script stays the program's parent instead of exec'ing chroot:
// RabbitMQ 4.0's scripts fork the Erlang VM (rabbitmqctl's run_escript)
// where 3.10's exec'd it, so a signal to the first process, such as the
// parent-death SIGTERM (proc_linux.go) or epmd's SIGINT, would leave the VM
// running. On either signal the script kills its whole process group. The
// program's standard input is passed on explicitly: sh gives a background
// job /dev/null.
const chrootScript = `set -e
root=$1 tmp=$2
shift 2
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /sys "$root/sys"
mkdir -p "$root$tmp"
mount --bind "$tmp" "$root$tmp"
trap 'kill -KILL 0' INT TERM
exec 3<&0
chroot "$root" "$@" <&3 3<&- &
wait $!`

// rootCommand returns a command that runs name with args in root, a
// directory holding a Debian root, or on the host when root is "". name is
// a path inside root. ctx cancels the command as in exec.CommandContext,
// except that in a root the whole process group is killed, as the program
// may have forked.
func rootCommand(ctx context.Context, root, name string, args ...string) *exec.Cmd {
	if root == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	full := append([]string{"--mount", "--propagation", "private",
		"/bin/sh", "-c", chrootScript, "sh", root, os.TempDir(), name}, args...)
	cmd := exec.CommandContext(ctx, "unshare", full...)
	// The group is the command's own: setProcAttr makes it a group leader.
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	return cmd
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
