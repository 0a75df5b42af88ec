//go:build unix

package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSweepStale(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	mk := func(name string, lock bool, pid string) string {
		dir := filepath.Join(os.TempDir(), nodeDirPrefix+name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(dir, pidFileName), []byte(pid+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	stale := mk("stale", true, "")
	deadNode := mk("dead-node", true, "999999999")
	creating := mk("creating", false, "")
	liveNode := mk("live-node", true, strconv.Itoa(os.Getpid()))
	held := mk("held", true, "")
	f, err := lockDir(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if got := sweepStale(); got != 2 {
		t.Errorf("sweepStale() = %d, want 2", got)
	}
	for dir, wantGone := range map[string]bool{stale: true, deadNode: true, creating: false, liveNode: false, held: false} {
		_, err := os.Stat(dir)
		if gone := errors.Is(err, os.ErrNotExist); gone != wantGone {
			t.Errorf("%s: removed = %v, want %v", filepath.Base(dir), gone, wantGone)
		}
	}
}
