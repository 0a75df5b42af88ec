//go:build !unix

package main

import (
	"os"
	"time"
)

// benchUsage is the part of a process's rusage the bench reports.
type benchUsage struct {
	cpu    time.Duration
	nvcsw  int64
	nivcsw int64
}

// benchSelfUsage reports that rusage is not available on this platform.
func benchSelfUsage() (benchUsage, bool) { return benchUsage{}, false }

// benchExitedUsage reports that rusage is not available on this platform.
func benchExitedUsage(*os.ProcessState) (benchUsage, bool) { return benchUsage{}, false }
