//go:build unix

package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSweepClusterDirectories checks that a cluster directory whose test
// binary died is swept only once none of its nodes runs.
func TestSweepClusterDirectories(t *testing.T) {
	tests := []struct {
		name      string
		pids      []string // one pid file per node directory
		wantSwept bool
	}{
		{"every node gone", []string{"999999999", "999999998"}, true},
		{"one node still stopping", []string{"999999999", strconv.Itoa(os.Getpid())}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			dir, err := os.MkdirTemp("", clusterDirPrefix)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			for i, pid := range tt.pids {
				node := filepath.Join(dir, "node"+strconv.Itoa(i+1))
				if err := os.Mkdir(node, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(node, pidFileName), []byte(pid+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			sweepStale()
			_, err = os.Stat(dir)
			if swept := errors.Is(err, os.ErrNotExist); swept != tt.wantSwept {
				t.Errorf("swept = %v, want %v", swept, tt.wantSwept)
			}
		})
	}
}
