//go:build unix

package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockName is the file in a node directory whose flock marks the directory
// as in use. The kernel drops the lock when its holder dies, however it dies.
const lockName = ".lock"

// lockDir takes the directory's lock for the life of the returned file.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sweepStale removes node directories that test binaries which died before
// Close left in the temporary directory: ours (same owner), with a lock
// nobody holds and no live node process. It returns how many it removed;
// failures are ignored, as this is housekeeping.
func sweepStale() int {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), nodeDirPrefix+"*"))
	removed := 0
	for _, dir := range dirs {
		if removeIfStale(dir) {
			removed++
		}
	}
	return removed
}

func removeIfStale(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return false
	}
	// No lock file: the directory is being created right now.
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false // its test binary is alive
	}
	if nodeAlive(filepath.Join(dir, pidFileName)) {
		return false // still shutting down after its binary died
	}
	// A cluster's directory holds one directory per node.
	nested, _ := filepath.Glob(filepath.Join(dir, "*", pidFileName))
	for _, pidFile := range nested {
		if nodeAlive(pidFile) {
			return false
		}
	}
	return os.RemoveAll(dir) == nil
}

// nodeAlive reports whether the pid in pidFile names a live process. A
// reused pid makes it report true, which only delays the sweep.
func nodeAlive(pidFile string) bool {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
