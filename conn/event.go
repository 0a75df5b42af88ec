package conn

import (
	"strconv"
	"time"

	"github.com/warrenmq/warren/heartbeat"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventStateChanged reports a move to Event.State.
	EventStateChanged EventKind = iota
	// EventDialFailed reports a failed dial (or a failed ready hook) of
	// Event.URL with Event.Err; the next attempt waits Event.Delay.
	EventDialFailed
	// EventConnected reports which broker (Event.URL) the supervisor is now on.
	EventConnected
	// EventConnectionLost reports that the connection to Event.URL ended with Event.Err.
	EventConnectionLost
	// EventDeadPeer reports that the broker was silent past DeadPeerLimit and
	// the socket was closed; Event.Err is a *heartbeat.DeadPeerError.
	EventDeadPeer
	// EventBlocked reports that the broker blocked the connection (resource alarm).
	EventBlocked
	// EventUnblocked reports that the broker lifted the block.
	EventUnblocked
	// EventBlockedTimeout reports a connection closed for staying blocked past BlockedTimeout.
	EventBlockedTimeout
	// EventStall reports a user callback running past StallThreshold, or the
	// end of such a call; Event.Stall holds the report.
	EventStall
	// EventHookFailed reports a ready hook that failed; the connection attempt
	// counts as failed. Event.Err names the hook.
	EventHookFailed
	// EventConsumerCancelled reports that the broker cancelled a consumer
	// (basic.cancel, e.g. its queue was deleted); the consumer resubscribes
	// with backoff. Event.Consumer and Event.Queue name it.
	EventConsumerCancelled
	// EventConsumerChannelClosed reports that a consumer's channel was closed
	// by the broker with Event.Err (e.g. 406 after consumer_timeout); the
	// consumer resubscribes.
	EventConsumerChannelClosed
	// EventConsumerResubscribed reports that a consumer is consuming again.
	EventConsumerResubscribed
	// EventHandlerPanicked reports a consumer handler that panicked; the
	// delivery was nacked. Event.Err holds the panic value.
	EventHandlerPanicked
	// EventPublisherRepublished reports messages republished on a new
	// connection; Event.Attempt holds how many.
	EventPublisherRepublished
	// EventQueueRedeclared reports that a consumer found its queue missing
	// (deleted while the connection lived) and declared it again, with its
	// bindings, from the Topology that declares it. Event.Consumer and
	// Event.Queue name them; Event.Err is the broker's 404.
	EventQueueRedeclared
)

// String returns the kind's name, such as "DialFailed".
func (k EventKind) String() string {
	switch k {
	case EventStateChanged:
		return "StateChanged"
	case EventDialFailed:
		return "DialFailed"
	case EventConnected:
		return "Connected"
	case EventConnectionLost:
		return "ConnectionLost"
	case EventDeadPeer:
		return "DeadPeer"
	case EventBlocked:
		return "Blocked"
	case EventUnblocked:
		return "Unblocked"
	case EventBlockedTimeout:
		return "BlockedTimeout"
	case EventStall:
		return "Stall"
	case EventHookFailed:
		return "HookFailed"
	case EventConsumerCancelled:
		return "ConsumerCancelled"
	case EventConsumerChannelClosed:
		return "ConsumerChannelClosed"
	case EventConsumerResubscribed:
		return "ConsumerResubscribed"
	case EventHandlerPanicked:
		return "HandlerPanicked"
	case EventPublisherRepublished:
		return "PublisherRepublished"
	case EventQueueRedeclared:
		return "QueueRedeclared"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing that happened to a Supervisor. Fields that do not apply
// to the Kind are zero.
type Event struct {
	Kind EventKind
	// State is the supervisor's state when the event was emitted.
	State State
	// Err is the error behind the event, with URLs redacted.
	Err error
	// URL is the broker concerned, redacted (amqp://user:***@host:port/vhost).
	URL string
	// Attempt counts failed dials since the last good connection; for
	// consumer events, failed subscriptions; for EventPublisherRepublished,
	// the messages republished.
	Attempt int
	// Delay is how long the supervisor waits before the next dial, or a
	// consumer before its next subscription attempt.
	Delay time.Duration
	// Dropped is how many events were dropped, because the buffer was full,
	// between the previous delivered event and this one.
	Dropped uint64
	// Consumer is the consumer's tag or name, for consumer events.
	Consumer string
	// Queue is the queue concerned, for consumer events.
	Queue string
	// Stall is the stall report of an EventStall.
	Stall *heartbeat.Stall
	// Time is when the event was emitted.
	Time time.Time
}
