package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// renderBench rebuilds the report of an earlier run from its JSON lines
// (written with -json), with the row definitions and targets of this
// binary and the counts of cfg, so runs of different builds (before and
// after a change) are tabled alike without measuring again.
func renderBench(path string, cfg benchConfig) (*benchReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	var env benchEnv
	var samples []benchSample
	var elapsed time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), benchMaxLine)
	for sc.Scan() {
		var line struct {
			Kind     string  `json:"kind"`
			ElapsedS float64 `json:"elapsed_s"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", path, err)
		}
		var target any
		switch line.Kind {
		case "env":
			target = &env
		case "sample":
			samples = append(samples, benchSample{})
			target = &samples[len(samples)-1]
		case "run":
			elapsed = time.Duration(line.ElapsedS * float64(time.Second))
			continue
		default:
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), target); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	rep := buildReport(env, cfg, samples)
	rep.Elapsed = elapsed
	return rep, nil
}
