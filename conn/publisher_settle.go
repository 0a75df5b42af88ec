package conn

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// pubLoss is what becomes of the messages of a channel that ended.
type pubLoss struct {
	retry  []*Confirmation // for the next channel
	failed []*Confirmation // settled now, each with the error at the same index
	errs   []error
}

func (l *pubLoss) fail(c *Confirmation, err error) {
	l.failed = append(l.failed, c)
	l.errs = append(l.errs, err)
}

// pubSettleLost decides the fate of the messages of an ended channel: written
// ones (in delivery-tag order) were handed to the broker and never confirmed;
// unwritten ones never left. reason is why the channel ended (nil for a
// graceful close). channelOnly tells that the broker closed just this channel
// while the connection lives: then reason is a channel error caused by a
// message (404 for a missing exchange, 403, 406...), and that message gets it,
// so that republishing does not repeat the fault forever.
//
// Unwritten messages are carried over unless their context has ended.
// Written ones fail with reason if they are to blame, with their context's
// error if it has ended, with ErrConfirmLost under ConfirmLostFail, and are
// carried over otherwise.
func pubSettleLost(written, unwritten []*Confirmation, reason error, channelOnly bool, policy ConfirmLostPolicy) pubLoss {
	var loss pubLoss
	blamed := func(*Confirmation) bool { return false }
	var blameErr error
	if channelOnly && reason != nil && len(written) > 0 {
		blameErr = fmt.Errorf("warren: the broker closed the publisher's channel: %w", reason)
		if exchange, ok := pubBlamedExchange(reason); ok {
			blamed = func(c *Confirmation) bool { return c.exchange == exchange }
		} else {
			// The broker stops at the first offending publish; the best
			// guess is the oldest one still unconfirmed.
			first := written[0]
			blamed = func(c *Confirmation) bool { return c == first }
		}
	}
	for _, c := range written {
		switch {
		case blamed(c):
			loss.fail(c, blameErr)
		case c.ctx.Err() != nil:
			loss.fail(c, pubConfirmLost(c.ctx.Err()))
		case policy == ConfirmLostFail:
			loss.fail(c, pubConfirmLost(reason))
		default:
			loss.retry = append(loss.retry, c)
		}
	}
	for _, c := range unwritten {
		if c.ctx.Err() != nil {
			loss.fail(c, pubExpiredError(c))
			continue
		}
		loss.retry = append(loss.retry, c)
	}
	return loss
}

// pubBlamedExchange extracts the exchange a channel error names, as RabbitMQ
// words them: "NOT_FOUND - no exchange 'x' in vhost '/'" or
// "ACCESS_REFUSED - write access to exchange 'x' in vhost '/' refused ...".
func pubBlamedExchange(reason error) (string, bool) {
	var ae *amqp.Error
	if !errors.As(reason, &ae) {
		return "", false
	}
	const marker = "exchange '"
	i := strings.Index(ae.Reason, marker)
	if i < 0 {
		return "", false
	}
	rest := ae.Reason[i+len(marker):]
	j := strings.IndexByte(rest, '\'')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}
