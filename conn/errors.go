package conn

import (
	"errors"
	"fmt"
)

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

	// ErrConfirmLost is the error of a message whose channel died after it
	// was written and before the broker confirmed it, when the publisher does
	// not (or may no longer) republish it. The broker may have the message.
	ErrConfirmLost = errors.New("warren: channel lost before the broker confirmed the message")
	// ErrNacked is the error of a message the broker refused with basic.nack.
	ErrNacked = errors.New("warren: the broker nacked the message")
	// ErrReturned is matched by a *ReturnedError: a mandatory message the
	// broker could not route.
	ErrReturned = errors.New("warren: the broker returned the message as unroutable")
	// ErrUnconfirmed is the error of a message still unsettled when its
	// publisher closed; it is matched by the *UnconfirmedError Close returns.
	ErrUnconfirmed = errors.New("warren: publisher closed before the broker confirmed the message")
	// ErrInvalidMessage is the error of a message a Publisher refuses before
	// writing it, because it cannot be encoded or the broker would refuse
	// it; the error names the field.
	ErrInvalidMessage = errors.New("warren: invalid message")

	// ErrInvalidTopology wraps every problem DeclareTopology finds in a Topology.
	ErrInvalidTopology = errors.New("warren: invalid topology")
	// ErrInvalidConsumerOptions wraps every problem Consume finds in its
	// handler or ConsumerOptions.
	ErrInvalidConsumerOptions = errors.New("warren: invalid consumer options")
	// errSupervisorClosed is ErrClosed naming what was closed.
	errSupervisorClosed = fmt.Errorf("%w: the supervisor was closed", ErrClosed)

	// ErrDeliverySettled is returned by a delivery's Ack, Nack or Reject
	// inside a consumer handler once the delivery is settled already: by an
	// earlier call of the handler's, or by warren after the handler returned.
	ErrDeliverySettled = errors.New("warren: delivery already settled")

	// ErrQueueNotDeclared is the error of a consumer on a server-named queue
	// that no topology has declared on the current connection yet.
	ErrQueueNotDeclared = errors.New("warren: server-named queue not declared on this connection")
)
