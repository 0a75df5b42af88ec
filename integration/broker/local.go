package broker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Bounds for a local node's life cycle. They apply even when the caller's
// context allows longer, so Find and Close stay bounded.
const (
	// bootTimeout bounds one boot attempt (about 5 to 12 s on a quiet
	// 2-core machine, longer when several test binaries boot at once).
	bootTimeout = 90 * time.Second
	// bootAttempts is how many times a boot is tried with fresh ports when
	// another process took one of them first.
	bootAttempts = 3
	// epmdReadyTimeout bounds the wait for the private epmd to listen.
	epmdReadyTimeout = 10 * time.Second
	// gracefulStopTimeout bounds `rabbitmqctl stop`; the process group is
	// killed after it.
	gracefulStopTimeout = 30 * time.Second
	// exitWait bounds each wait for a stopped or killed process to exit.
	exitWait = 10 * time.Second
	// portCheckTimeout bounds the TCP check that the AMQP port accepts.
	portCheckTimeout = 5 * time.Second
)

// nodeDirPrefix starts the name of every node directory, so sweepStale can
// find those of test binaries that died before Close.
const nodeDirPrefix = "warren-broker-"

// pidFileName is the node's pid file in its directory.
const pidFileName = "rabbitmq.pid"

// epmdReadyLine is what `epmd -d -d` prints once it listens.
const epmdReadyLine = "entering the main select() loop"

// errPortInUse marks a boot that failed because a port was taken between
// freePorts and the bind; the boot is retried with other ports.
var errPortInUse = errors.New("port already in use")

// localNode is a private RabbitMQ node: its own temporary directory (data,
// logs, config, Erlang cookie as $HOME), its own loopback ports, and its own
// epmd on a private port, so it never meets another node on this machine,
// and stopping it stops only what it started.
type localNode struct {
	scripts string // RabbitMQ scripts directory (rabbitmq-server, rabbitmqctl)
	epmdBin string
	dir     string
	name    string // warren-test-<random>@localhost
	mgmt    bool
	// cookie is the Erlang cookie; "" means a random one. The nodes of a
	// cluster share one, so they (and rabbitmqctl) can reach each other.
	cookie string

	// tls, when set, adds a TLS listener on tlsPort.
	tls *TLSFiles
	// root is a Debian root the node's programs run in (chroot.go); ""
	// means the host. scripts and epmdBin are paths inside it.
	root string
	// extraConfig is appended to rabbitmq.conf.
	extraConfig string

	amqpPort, distPort, epmdPort, mgmtPort, tlsPort int

	env []string

	// life serialises boot, stop, restart and close; a channel so waiting
	// for it is bounded by a context.
	life   chan struct{}
	server *proc // nil while stopped
	epmd   *proc // nil while stopped
	// dirLock holds the directory's flock, so sweepStale in other test
	// binaries leaves the directory alone while this one lives.
	dirLock *os.File
}

// startLocal creates the node's directory and boots it, retrying with fresh
// ports when one was taken. On error nothing it started is left running and
// the directory is removed.
func startLocal(ctx context.Context, scripts, epmdBin string, opts Options, extra ...nodeOption) (*localNode, error) {
	dir, err := os.MkdirTemp("", nodeDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("broker: creating node directory: %w", err)
	}
	n := &localNode{
		scripts: scripts,
		epmdBin: epmdBin,
		dir:     dir,
		name:    "warren-test-" + randomHex(4) + "@localhost",
		mgmt:    opts.Management,
		tls:     opts.TLS,
		life:    make(chan struct{}, 1), // empty: held by startLocal until booted
	}
	for _, o := range extra {
		o(n)
	}
	n.dirLock, err = lockDir(dir)
	if err == nil {
		err = n.writeStaticFiles()
	}
	if err == nil {
		err = n.bootWithRetries(ctx)
	}
	n.unlock()
	if err != nil {
		// A failed start is cleaned up at once: the caller gets no handle
		// to do it later.
		if cerr := n.close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return n, nil
}

// bootWithRetries boots, with fresh ports each time another process took
// one first. Caller must hold n.life.
func (n *localNode) bootWithRetries(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := n.attemptBoot(ctx)
		if err == nil || !errors.Is(err, errPortInUse) || attempt == bootAttempts || ctx.Err() != nil {
			return err
		}
		n.stopLocked()
	}
}

// attemptBoot picks ports, writes the port-dependent config and boots.
func (n *localNode) attemptBoot(ctx context.Context) error {
	count := 3
	if n.mgmt {
		count++
	}
	if n.tls != nil {
		count++
	}
	ports, err := freePorts(count)
	if err != nil {
		return err
	}
	n.amqpPort, n.distPort, n.epmdPort = ports[0], ports[1], ports[2]
	next := 3
	if n.mgmt {
		n.mgmtPort = ports[next]
		next++
	}
	if n.tls != nil {
		n.tlsPort = ports[next]
	}
	// A failed attempt may have left a half-initialised database.
	for _, sub := range []string{"mnesia", "log"} {
		if err := os.RemoveAll(filepath.Join(n.dir, sub)); err != nil {
			return fmt.Errorf("broker: resetting node directory: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "rabbitmq.conf"), []byte(n.config()), 0o600); err != nil {
		return fmt.Errorf("broker: writing rabbitmq.conf: %w", err)
	}
	n.env = n.environ()
	if err := n.startEpmd(ctx); err != nil {
		return err
	}
	return n.bootServer(ctx)
}

func (n *localNode) writeStaticFiles() error {
	plugins := n.plugins()
	cookie := n.cookie
	if cookie == "" {
		cookie = randomHex(16)
	}
	files := []struct {
		name string
		data string
		perm os.FileMode
	}{
		// The cookie makes this node unreachable for CLI tools that do not
		// use this directory as $HOME.
		{".erlang.cookie", cookie, 0o400},
		// Our own (empty) env file, so /etc/rabbitmq/rabbitmq-env.conf does
		// not apply.
		{"rabbitmq-env.conf", "", 0o600},
		{"advanced.config", "[].\n", 0o600},
		{"enabled_plugins", plugins + "\n", 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(n.dir, f.name), []byte(f.data), f.perm); err != nil {
			return fmt.Errorf("broker: writing %s: %w", f.name, err)
		}
	}
	return nil
}

// config renders rabbitmq.conf. guest may log in because clients connect
// from 127.0.0.1 (loopback_users keeps its default).
func (n *localNode) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listeners.tcp.1 = 127.0.0.1:%d\n", n.amqpPort)
	if n.mgmt {
		fmt.Fprintf(&b, "management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %d\n", n.mgmtPort)
		// The management API lists connections from these statistics; the
		// default 5 s would make tests wait for it.
		b.WriteString("collect_statistics_interval = 1000\n")
	}
	b.WriteString(n.tlsConfig())
	b.WriteString(n.extraConfig)
	return b.String()
}

// environ is the environment of the node and of every rabbitmqctl run
// against it. Inherited RABBITMQ_* and ERL_* variables are dropped so the
// caller's settings cannot leak in.
func (n *localNode) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || strings.HasPrefix(k, "RABBITMQ_") || strings.HasPrefix(k, "ERL_") {
			continue
		}
		env = append(env, kv)
	}
	// inet_dist_use_interface keeps the distribution listeners on loopback.
	erlArgs := "-kernel inet_dist_use_interface {127,0,0,1}"
	return append(env,
		"HOME="+n.dir,
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_USE_LONGNAME=false",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_PID_FILE="+n.pidFile(),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(n.dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(n.dir, "rabbitmq-env.conf"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+erlArgs,
		"RABBITMQ_CTL_ERL_ARGS="+erlArgs,
		// No erl started with this environment may start an epmd: only
		// ours, which dies with the test binary. rabbitmqctl otherwise runs
		// a helper erl that starts an epmd daemon each time, and one that
		// races the binary's death outlives it. ERL_AFLAGS reaches that
		// helper; command-line arguments do not.
		"ERL_AFLAGS=-start_epmd false",
		"ERL_EPMD_PORT="+strconv.Itoa(n.epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

func (n *localNode) pidFile() string { return filepath.Join(n.dir, pidFileName) }

func (n *localNode) ctlPath() string { return filepath.Join(n.scripts, "rabbitmqctl") }

// runner returns a rabbitmqctl runner for this node.
func (n *localNode) runner() execRunner {
	return execRunner{path: n.ctlPath(), node: n.name, env: n.env, root: n.root}
}

func (n *localNode) url() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.amqpPort)
}

func (n *localNode) mgmtURL() string {
	if !n.mgmt {
		return ""
	}
	return fmt.Sprintf("http://guest:guest@127.0.0.1:%d/", n.mgmtPort)
}

// startEpmd starts the node's private epmd in the foreground, so it is our
// child (stopped by stopEpmd, and signalled if the test binary dies), and
// waits until it listens: erl would otherwise start a daemon of its own.
func (n *localNode) startEpmd(ctx context.Context) error {
	logFile, err := os.Create(filepath.Join(n.dir, "epmd.log"))
	if err != nil {
		return fmt.Errorf("broker: creating epmd.log: %w", err)
	}
	// An os.Pipe rather than cmd.StderrPipe: proc's goroutine calls Wait,
	// which would close a StderrPipe under the reader.
	r, w, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return fmt.Errorf("broker: epmd pipe: %w", err)
	}
	cmd := rootCommand(context.Background(), n.root, n.epmdBin, "-port", strconv.Itoa(n.epmdPort), "-address", "127.0.0.1", "-d", "-d")
	cmd.Env = n.env
	cmd.Stderr = w
	p, err := startProc(cmd)
	w.Close() // the child holds its own copy; EOF comes when it exits
	if err != nil {
		r.Close()
		logFile.Close()
		return fmt.Errorf("broker: starting epmd: %w", err)
	}
	n.epmd = p
	ready := make(chan struct{})
	early := make(chan string, 1) // what epmd printed, if it exited before ready
	go scanEpmd(r, logFile, ready, early)

	t := time.NewTimer(epmdReadyTimeout)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case text := <-early:
		if strings.Contains(text, "already") {
			return fmt.Errorf("broker: epmd on port %d: %w: %s", n.epmdPort, errPortInUse, strings.TrimSpace(text))
		}
		return fmt.Errorf("broker: epmd exited: %s", strings.TrimSpace(text))
	case <-t.C:
		return fmt.Errorf("broker: epmd did not listen on port %d within %v", n.epmdPort, epmdReadyTimeout)
	case <-ctx.Done():
		return fmt.Errorf("broker: waiting for epmd: %w", ctx.Err())
	}
}

// scanEpmd copies epmd's debug output from r to out, closes ready at the
// line that says it listens, and keeps draining (a full pipe would block
// epmd) until epmd exits; then it closes r and out. If epmd exits before it
// is ready, what it printed goes to early.
func scanEpmd(r io.ReadCloser, out io.WriteCloser, ready chan<- struct{}, early chan<- string) {
	defer r.Close()
	defer out.Close()
	sc := bufio.NewScanner(r)
	var seen strings.Builder
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(out, line)
		if isReady {
			continue
		}
		if seen.Len() < maxErrorOutput {
			seen.WriteString(line + "\n")
		}
		if strings.Contains(line, epmdReadyLine) {
			isReady = true
			close(ready)
		}
	}
	// The scanner stops early on an over-long line; drain the rest anyway.
	_, _ = io.Copy(out, r)
	if !isReady {
		early <- seen.String()
	}
}

// bootServer starts rabbitmq-server and waits until the node runs the
// RabbitMQ application and its AMQP port accepts connections.
func (n *localNode) bootServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	_ = os.Remove(n.pidFile()) // a stale pid file would end the wait at once
	outPath := filepath.Join(n.dir, "server.out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("broker: creating server.out: %w", err)
	}
	defer out.Close()
	// The script under the scripts directory, not /usr/sbin's wrapper,
	// which would switch to the rabbitmq user and its cookie.
	cmd := rootCommand(context.Background(), n.root, filepath.Join(n.scripts, "rabbitmq-server"))
	cmd.Env = n.env
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProc(cmd)
	if err != nil {
		return fmt.Errorf("broker: starting rabbitmq-server: %w", err)
	}
	n.server = p

	// `rabbitmqctl wait PIDFILE` waits for the pid file, then for the
	// application; await_startup alone fails at once while the node is not
	// yet registered with epmd.
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	waited := make(chan error, 1)
	go func() {
		_, _, err := n.runner().run(waitCtx, []string{"wait", n.pidFile(), "--timeout", strconv.Itoa(int(bootTimeout / time.Second))})
		waited <- err
	}()
	select {
	case err = <-waited:
	case <-p.done:
		cancelWait()
		<-waited
		err = fmt.Errorf("rabbitmq-server exited: %v", p.err)
	case <-ctx.Done():
		cancelWait()
		<-waited
		err = ctx.Err()
	}
	if err == nil {
		err = checkPort(ctx, "127.0.0.1:"+strconv.Itoa(n.amqpPort))
	}
	if err == nil && n.tls != nil {
		err = checkPort(ctx, "127.0.0.1:"+strconv.Itoa(n.tlsPort))
	}
	if err == nil {
		return nil
	}
	tail := n.serverOutputTail(outPath)
	if strings.Contains(tail, "eaddrinuse") || strings.Contains(tail, "address already in use") {
		return fmt.Errorf("%w: %w: %v: %s", ErrBootFailed, errPortInUse, err, tail)
	}
	return fmt.Errorf("%w: node %s: %v\n%s", ErrBootFailed, n.name, err, tail)
}

// serverOutputTail returns the end of the node's console output, to put in
// a boot error.
func (n *localNode) serverOutputTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
	}
	return strings.TrimSpace(string(data))
}

// checkPort dials addr once, bounded by portCheckTimeout and ctx.
func checkPort(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, portCheckTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("AMQP port not accepting: %w", err)
	}
	return c.Close()
}

// stopServer stops the node process: `rabbitmqctl stop PIDFILE` first, and
// if that fails or takes too long, SIGKILL to its process group. It is
// bounded by gracefulStopTimeout and exitWait even when ctx allows longer.
func (n *localNode) stopServer(ctx context.Context) error {
	p := n.server
	if p == nil {
		return nil
	}
	if !p.exited() {
		ctx, cancel := context.WithTimeout(ctx, gracefulStopTimeout)
		_, _, stopErr := n.runner().run(ctx, []string{"stop", n.pidFile()})
		cancel()
		if stopErr != nil || !p.waitExit(exitWait) {
			if err := p.kill(exitWait); err != nil {
				return err
			}
		}
	}
	n.server = nil
	return nil
}

// stopEpmd stops the private epmd (no node is registered with it any more).
func (n *localNode) stopEpmd() error {
	p := n.epmd
	if p == nil {
		return nil
	}
	if !p.exited() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		if !p.waitExit(exitWait) {
			if err := p.kill(exitWait); err != nil {
				return err
			}
		}
	}
	n.epmd = nil
	return nil
}

// stopLocked stops the server and epmd after a failed boot attempt.
// Caller must hold n.life.
func (n *localNode) stopLocked() {
	_ = n.stopServer(context.Background())
	_ = n.stopEpmd()
}

// lock acquires n.life, bounded by ctx.
func (n *localNode) lock(ctx context.Context) error {
	select {
	case <-n.life:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *localNode) unlock() { n.life <- struct{}{} }

// restart stops the node process and boots it again with the same
// environment, ports and data directory; epmd keeps running.
func (n *localNode) restart(ctx context.Context) error {
	if err := n.lock(ctx); err != nil {
		return fmt.Errorf("broker: Restart: %w", err)
	}
	defer n.unlock()
	if n.epmd == nil {
		return fmt.Errorf("%w: Restart", ErrClosed)
	}
	if err := n.stopServer(ctx); err != nil {
		return fmt.Errorf("broker: Restart: %w", err)
	}
	if err := n.bootServer(ctx); err != nil {
		return fmt.Errorf("broker: Restart: %w", err)
	}
	return nil
}

// close stops the node and epmd and removes the directory, then checks that
// nothing is left; it runs every step even when one fails.
func (n *localNode) close(ctx context.Context) error {
	if err := n.lock(ctx); err != nil {
		return fmt.Errorf("broker: stopping node %s: %w", n.name, err)
	}
	defer n.unlock()
	server := n.server
	var errs []error
	if err := n.stopServer(ctx); err != nil {
		errs = append(errs, err)
	}
	// epmd goes last: rabbitmqctl stop needed it to find the node.
	if err := n.stopEpmd(); err != nil {
		errs = append(errs, err)
	}
	if n.dirLock != nil {
		// Released before the removal on purpose: holding it across does
		// not stop a sweeper, and the directory is gone a moment later.
		n.dirLock.Close()
	}
	if err := os.RemoveAll(n.dir); err != nil {
		errs = append(errs, fmt.Errorf("broker: removing %s: %w", n.dir, err))
	} else if _, err := os.Stat(n.dir); !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("broker: %s still exists after removal", n.dir))
	}
	if server != nil && !server.exited() {
		errs = append(errs, fmt.Errorf("broker: node %s (pid %d) still running", n.name, server.cmd.Process.Pid))
	}
	return errors.Join(errs...)
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
