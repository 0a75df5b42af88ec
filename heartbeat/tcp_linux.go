//go:build linux

package heartbeat

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// Linux socket options not in package syscall.
const (
	tcpUserTimeout = 0x12 // TCP_USER_TIMEOUT
	tcpInfo        = 0xb  // TCP_INFO
	// tcpiLastDataRecv is the offset of tcpi_last_data_recv (u32,
	// milliseconds) in struct tcp_info: eight u8 fields, then u32 rto, ato,
	// snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
	// last_data_sent, last_ack_sent, last_data_recv. The layout is stable
	// kernel ABI: fields are only ever appended.
	tcpiLastDataRecv = 8 + 11*4
)

// SetUserTimeout sets TCP_USER_TIMEOUT on c, if c is a TCP connection on
// Linux: the kernel aborts the connection when data it sent stays
// unacknowledged by the peer's TCP for d. It reports whether the option was
// set; elsewhere it does nothing and returns false. d <= 0 leaves the
// kernel's default (about 15 minutes of retransmissions).
//
// The peer's kernel acknowledges data whether or not the broker is busy, so
// this bound is independent of broker load, and it also covers a connection
// that is owed nothing. It says nothing about a peer whose kernel is alive
// but whose application hangs, nor about a userspace proxy that keeps
// acknowledging while it holds the bytes; the Monitor's rules cover those.
func SetUserTimeout(c net.Conn, d time.Duration) bool {
	if d <= 0 {
		return false
	}
	return setUserTimeout(c, d)
}

// setUserTimeout sets TCP_USER_TIMEOUT on c to d; 0 restores the kernel's
// default.
func setUserTimeout(c net.Conn, d time.Duration) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ms := int((d + time.Millisecond - 1) / time.Millisecond)
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, ms)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// recvAge returns how long ago the kernel last received data on c (TCP_INFO
// tcpi_last_data_recv, millisecond resolution), independent of when this
// process read it. ok is false if c is not a TCP connection or the kernel
// does not say.
func recvAge(c net.Conn) (age time.Duration, ok bool) {
	sc, isSC := c.(syscall.Conn)
	if !isSC {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info [104]byte
	n := uint32(len(info))
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, tcpInfo,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	}); err != nil || errno != 0 || n < tcpiLastDataRecv+4 {
		return 0, false
	}
	ms := *(*uint32)(unsafe.Pointer(&info[tcpiLastDataRecv]))
	return time.Duration(ms) * time.Millisecond, true
}
