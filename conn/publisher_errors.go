package conn

import (
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ReturnedError is the error of a mandatory message the broker returned as
// unroutable (basic.return). It matches ErrReturned.
type ReturnedError struct {
	// Return is the message as the broker returned it, with its reply code
	// and text (usually 312 NO_ROUTE).
	Return amqp.Return
}

// Error describes the return.
func (e *ReturnedError) Error() string {
	return fmt.Sprintf("%v: exchange %q, routing key %q: %d %s",
		ErrReturned, e.Return.Exchange, e.Return.RoutingKey, e.Return.ReplyCode, e.Return.ReplyText)
}

// Unwrap returns ErrReturned.
func (e *ReturnedError) Unwrap() error { return ErrReturned }

// pubMaxListedIDs bounds how many message ids an UnconfirmedError prints; the
// field keeps all of them.
const pubMaxListedIDs = 20

// UnconfirmedError is returned by Publisher.Close when messages were still
// unsettled at the end of its context. Each of them also failed on its own
// Confirmation with ErrUnconfirmed. It matches ErrUnconfirmed.
type UnconfirmedError struct {
	// MessageIDs lists the unsettled messages in publish order.
	MessageIDs []string
}

// Error names the unsettled messages, the first few of them by id.
func (e *UnconfirmedError) Error() string {
	ids := e.MessageIDs
	more := ""
	if len(ids) > pubMaxListedIDs {
		more = fmt.Sprintf(" and %d more", len(ids)-pubMaxListedIDs)
		ids = ids[:pubMaxListedIDs]
	}
	return fmt.Sprintf("%v: %d message(s): %s%s", ErrUnconfirmed, len(e.MessageIDs), strings.Join(ids, ", "), more)
}

// Unwrap returns ErrUnconfirmed.
func (e *UnconfirmedError) Unwrap() error { return ErrUnconfirmed }

// pubConfirmLost is the error of a written message that will not be
// republished, because of reason (the channel's end, or the message's own
// context).
func pubConfirmLost(reason error) error {
	if reason == nil {
		return ErrConfirmLost
	}
	return fmt.Errorf("%w: %w", ErrConfirmLost, reason)
}
