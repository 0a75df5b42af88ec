//go:build !linux

package heartbeat

import (
	"net"
	"time"
)

// SetUserTimeout sets TCP_USER_TIMEOUT on Linux; on this OS it does nothing
// and returns false. See the Linux version for what the option adds.
func SetUserTimeout(c net.Conn, d time.Duration) bool { return false }

// recvAge is only known on Linux (TCP_INFO); elsewhere the owed rule relies
// on the reader and on the late-timer guard.
func recvAge(c net.Conn) (time.Duration, bool) { return 0, false }

func setUserTimeout(c net.Conn, d time.Duration) bool { return false }
