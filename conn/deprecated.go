package conn

import (
	"errors"
	"fmt"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// featureTransientNonExclusive is RabbitMQ's name for transient
// non-exclusive queues, a feature RabbitMQ 4.0 deprecates.
const featureTransientNonExclusive = "transient_nonexcl_queues"

// deprecatedFeature names the RabbitMQ 4.x deprecated feature that
// declaring q uses, or returns "". A queue that is neither Durable nor
// Exclusive is transient and non-exclusive, whatever its AutoDelete.
func (q *Queue) deprecatedFeature() string {
	if !q.Durable && !q.Exclusive {
		return featureTransientNonExclusive
	}
	return ""
}

// warnDeprecated logs a warning for every queue of t that uses a feature
// RabbitMQ 4.x deprecates, once per DeclareTopology call.
func warnDeprecated(log *slog.Logger, t Topology) {
	for _, q := range t.Queues {
		if f := q.deprecatedFeature(); f != "" {
			log.Warn("warren: queue uses a feature RabbitMQ 4.0 deprecates; a broker that denies it refuses the declaration, and warren stops with a permanent error. Set Durable (or Exclusive for a queue of this connection alone)",
				"queue", q.describe(), "feature", f)
		}
	}
}

// deprecatedRefusal marks err permanent when it answers the declaration of
// something that uses a deprecated feature with 541 INTERNAL_ERROR: that is
// how RabbitMQ 4.x refuses a feature its configuration does not permit (it
// closes the connection), and every retry would be refused the same way.
// The feature comes from what warren declared, not from the broker's text.
func deprecatedRefusal(feature string, err error) error {
	var ae *amqp.Error
	if feature == "" || !errors.As(err, &ae) || ae.Code != amqp.InternalError {
		return err
	}
	return reconnect.MarkPermanent(fmt.Errorf("%w (RabbitMQ refuses the deprecated feature %s)", err, feature))
}
