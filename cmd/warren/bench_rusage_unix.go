//go:build unix

package main

import (
	"os"
	"syscall"
	"time"
)

// benchUsage is the part of a process's rusage the bench reports.
type benchUsage struct {
	cpu    time.Duration // user + system
	nvcsw  int64         // voluntary context switches
	nivcsw int64         // involuntary context switches
}

// benchSelfUsage returns this process's resource usage so far.
func benchSelfUsage() (benchUsage, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return benchUsage{}, false
	}
	return benchFromRusage(&ru), true
}

// benchExitedUsage returns the resource usage of a process that has exited.
func benchExitedUsage(ps *os.ProcessState) (benchUsage, bool) {
	if ps == nil {
		return benchUsage{}, false
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return benchUsage{}, false
	}
	return benchFromRusage(ru), true
}

func benchFromRusage(ru *syscall.Rusage) benchUsage {
	return benchUsage{
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		nvcsw:  int64(ru.Nvcsw),
		nivcsw: int64(ru.Nivcsw),
	}
}
