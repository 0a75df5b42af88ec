package heartbeat

import (
	"bytes"
	"runtime"
	"strconv"
)

// Go has no API to read another goroutine's stack. The watchdog therefore
// learns the watched goroutine's id on that goroutine (from the header of its
// own traceback) and, when it stalls, dumps every goroutine and cuts out the
// one with that id.

const (
	// idBufSize holds "goroutine 18446744073709551615 [" with room to spare.
	idBufSize = 64
	// firstDumpSize is the initial buffer for a dump of all goroutines; it is
	// doubled until the dump fits, up to maxStallDump.
	firstDumpSize = 64 << 10
)

var goroutinePrefix = []byte("goroutine ")

// goroutineID returns the calling goroutine's id, or 0 if it cannot be parsed.
// buf is caller-provided so that the call does not allocate. It costs a
// traceback of the calling goroutine: about 2µs for a shallow stack, more for
// deep ones (see BenchmarkGoroutineID).
func goroutineID(buf *[idBufSize]byte) uint64 {
	n := runtime.Stack(buf[:], false)
	return parseGoroutineID(buf[:n])
}

// parseGoroutineID parses the id from a traceback header "goroutine N [...".
func parseGoroutineID(b []byte) uint64 {
	if !bytes.HasPrefix(b, goroutinePrefix) {
		return 0
	}
	b = b[len(goroutinePrefix):]
	var id uint64
	digits := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
		digits++
	}
	if digits == 0 || digits == len(b) || b[digits] != ' ' {
		return 0
	}
	return id
}

// goroutineStack returns the traceback of the goroutine with the given id, or
// nil if no such goroutine exists (it finished, or id is 0) or it is beyond
// the first maxStallDump bytes of the dump. It stops the world briefly, so
// it is for rare events such as stall reports only.
func goroutineStack(id uint64) []byte {
	return findGoroutineIn(dumpAll(maxStallDump), id)
}

// findGoroutine extracts the block of goroutine id from a runtime.Stack dump
// of all goroutines, in which blocks are separated by blank lines. It returns
// a copy so that the (large) dump can be freed.
func findGoroutine(dump []byte, id uint64) []byte {
	header := make([]byte, 0, idBufSize)
	header = append(header, goroutinePrefix...)
	header = strconv.AppendUint(header, id, 10)
	header = append(header, " ["...)
	for len(dump) > 0 {
		block := dump
		rest := []byte(nil)
		if i := bytes.Index(dump, []byte("\n\n")); i >= 0 {
			block, rest = dump[:i+1], dump[i+2:]
		}
		if bytes.HasPrefix(block, header) {
			return append([]byte(nil), block...)
		}
		dump = rest
	}
	return nil
}
