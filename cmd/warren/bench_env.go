package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// benchEnv is what a bench run was measured on.
type benchEnv struct {
	Date      string `json:"date"`
	CPUs      int    `json:"cpus"`
	Memory    string `json:"memory"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	RabbitMQ  string `json:"rabbitmq"`
	Erlang    string `json:"erlang"`
	AMQP091   string `json:"amqp091_go"`
	Warren    string `json:"warren"`
	Broker    string `json:"broker"`
	KillRoute string `json:"kill_route"`
	Command   string `json:"command"`
}

// describeEnv records the machine, the versions and the broker of this run.
func describeEnv(bn *bench) benchEnv {
	e := benchEnv{
		Date:      time.Now().UTC().Format(time.RFC3339),
		CPUs:      runtime.NumCPU(),
		Memory:    memTotal(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Kernel:    kernelRelease(),
		Go:        runtime.Version(),
		AMQP091:   "unknown",
		Warren:    "unknown",
		Broker:    fmt.Sprintf("%s at %s", bn.b.Source, bn.b.Addr()),
		KillRoute: bn.admin.route(),
		Command:   bn.cfg.command,
	}
	if bn.b.Node != "" {
		e.Broker += " (node " + bn.b.Node + ")"
	}
	props := bn.conn.Properties
	e.RabbitMQ, _ = props["version"].(string)
	e.Erlang, _ = props["platform"].(string)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/rabbitmq/amqp091-go" {
				e.AMQP091 = d.Version
			}
		}
		e.Warren = vcsRevision(bi.Settings)
	}
	if e.Warren == noVCS {
		e.Warren = gitRevision()
	}
	return e
}

// noVCS is what vcsRevision says of a binary built without VCS stamping
// (go build -buildvcs=false, or GOFLAGS saying so).
const noVCS = "(no VCS information)"

// gitRevision asks git about the working directory, for binaries built
// without VCS stamping.
func gitRevision() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return noVCS
	}
	s := strings.TrimSpace(string(rev))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		s += " with uncommitted changes"
	}
	return s + " (from git)"
}

// vcsRevision names the commit the binary was built from, marked when the
// work tree had changes.
func vcsRevision(settings []debug.BuildSetting) string {
	rev, modified := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return noVCS
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += " with uncommitted changes"
	}
	return rev
}

// memTotal reads MemTotal from /proc/meminfo (Linux), rounded to GiB.
func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseFloat(fields[1], 64); err == nil {
				return fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown"
}

// kernelRelease reads the kernel release (Linux).
func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
