// Package reconnect decides when the supervisor dials again and whether it should.
package reconnect

import (
	_ "github.com/cenkalti/backoff/v4"
	_ "github.com/rabbitmq/amqp091-go"
)
