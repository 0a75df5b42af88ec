package conn

import (
	"bytes"
	"runtime"
	"strconv"
)

// currentGoroutineID returns the runtime's id of the calling goroutine, parsed
// from the first line of its stack ("goroutine 42 [running]:"). Go offers no
// API for it; warren needs it only to notice Close called from inside its own
// event handler, which must not wait for the handler to return.
func currentGoroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return -1
	}
	return id
}
