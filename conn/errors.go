package conn

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrClosed is returned by operations on a Supervisor that is closing or closed.
	ErrClosed = errors.New("warren: closed")
	// ErrInvalidOptions wraps every validation failure reported by New.
	ErrInvalidOptions = errors.New("warren: invalid options")
	// ErrConnectionLost is the error of a connection that ended without a
	// reason from the broker or the socket.
	ErrConnectionLost = errors.New("warren: connection lost")
	// ErrBlockedTimeout is the error of a connection closed because the broker
	// blocked it for longer than Options.BlockedTimeout.
	ErrBlockedTimeout = errors.New("warren: connection blocked too long")
	// ErrHookFailed wraps the error of a ready hook that failed.
	ErrHookFailed = errors.New("warren: ready hook failed")
	// ErrHookPanicked wraps the value of a user callback that panicked.
	ErrHookPanicked = errors.New("warren: callback panicked")
)
