package conn

import (
	"crypto/tls"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
	"github.com/warrenmq/warren/reconnect"
)

// Defaults of Options. They are constants so that nothing shared and mutable
// stands behind DefaultOptions.
const (
	DefaultHeartbeat      = 10 * time.Second
	DefaultDialTimeout    = 10 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	DefaultEventBuffer    = 256
	DefaultStallThreshold = time.Second
)

// Options configures a Supervisor. The zero value of every field means its
// default; New validates and copies the struct, so changing it afterwards has
// no effect.
type Options struct {
	// URLs are the brokers to dial, amqp:// or amqps://, tried in turn; after a
	// whole round has failed the next round waits for the reconnect backoff.
	// Every URL dialed moves to the back of the queue: after a connection is
	// lost the next dial starts with another node, and a node that refused is
	// tried again only after the others. At least one is required; there is no
	// default.
	URLs []string

	// KeepURLOrder dials URLs in the order given (the first one first, then
	// the next on a failure) instead of in an order shuffled once, in New.
	// The shuffle is the default because a fleet of services given the same
	// list would otherwise all sit on the first node: one node carries every
	// connection (and, with exclusive or classic queues, every queue) and
	// its loss moves the whole fleet at once, while the other nodes idle.
	// Set it for a list ordered by preference (a local node first, a remote
	// site last) or for a test that needs a known first node. Defaults to
	// false: shuffled.
	KeepURLOrder bool

	// ShuffleURLs is the default now and has no effect.
	//
	// Deprecated: URLs are shuffled unless KeepURLOrder is set.
	ShuffleURLs bool

	// ConnectionName is sent to the broker as the connection_name client
	// property, so operators can tell connections apart (and the broker's
	// management UI shows it). Defaults to "" (no name is sent).
	ConnectionName string

	// Heartbeat is the AMQP heartbeat interval proposed to the broker; the
	// broker may negotiate it lower. Heartbeats cannot be disabled: a supervisor
	// without them cannot tell a partition from silence. Defaults to 10s.
	Heartbeat time.Duration

	// DeadPeerLimit is how long the connection may read nothing before warren
	// declares the peer dead and closes the socket. A healthy RabbitMQ can stay
	// silent for up to one heartbeat after traffic stops, so the limit must be
	// at least 5/4 of Heartbeat (see heartbeat.CheckLimit). An idle connection
	// is judged faster: right after a heartbeat frame the broker's next frame
	// is due within Heartbeat/2, so there 3/5 of the limit applies (3/4 of the
	// heartbeat with the default). amqp091-go on its own waits 1.5x the
	// heartbeat after the last read. Defaults to 5/4 of Heartbeat.
	DeadPeerLimit time.Duration

	// OwedReplyLimit is how long a reply may be owed with nothing at all read
	// from the socket before warren declares the peer dead: a publisher's
	// channel is in confirm mode, so every publish it writes is owed a
	// confirm, which a healthy broker sends within milliseconds. This catches
	// a partition under load long before DeadPeerLimit. The rule is
	// suspended while the broker blocks the connection (it owes nothing then)
	// and while a write is stuck because the broker stopped reading (credit
	// flow); on Linux it also asks the kernel whether data arrived that this
	// process was too busy to read. It is a floor: the limit in force is 3x
	// the longest reply gap of the last five to ten minutes when that is
	// longer (heartbeat.OwedGapFactor), never above DeadPeerLimit, and a
	// connection lost to this rule raises it for the next connections for
	// 10 minutes, so a broker that holds confirms on purpose cannot drive a
	// reconnect loop. Negative turns the rule off. Defaults to
	// heartbeat.RecommendedOwedLimit(Heartbeat): 3/40 of Heartbeat within
	// 250ms..1s (250ms at a 1s heartbeat, 750ms at 10s).
	OwedReplyLimit time.Duration

	// TCPUserTimeout sets TCP_USER_TIMEOUT on the dialed socket (Linux only;
	// ignored elsewhere): the kernel aborts the connection when data it sent
	// stays unacknowledged by the broker's kernel this long. That is
	// independent of broker load and covers what the other rules cannot see,
	// a write stuck in a send buffer the network no longer drains; it is
	// lifted while the broker blocks the connection. A userspace proxy that
	// keeps acknowledging hides a partition from it. Negative turns it off.
	// Defaults to DeadPeerLimit.
	TCPUserTimeout time.Duration

	// DialTimeout bounds one dial: TCP connect, TLS and the AMQP handshake.
	// Defaults to 10s.
	DialTimeout time.Duration

	// CloseTimeout bounds the AMQP close handshake during Close when Close's
	// context has no earlier deadline. After it the socket is closed anyway.
	// Defaults to 5s.
	CloseTimeout time.Duration

	// Reconnect is the reconnect schedule: capped exponential backoff with
	// jitter; failed dials back off, and connections lost within a second of
	// Ready count as flaps that back off on their own, forgiven by healthy
	// time. Defaults to reconnect.DefaultPolicy().
	Reconnect reconnect.Policy

	// RetryPermanent makes the supervisor retry errors classified permanent
	// (bad credentials, unknown vhost, TLS verification failures) instead of
	// moving to Closed with the error. Without it, the supervisor stops once
	// every URL of a round failed permanently; one node refusing while others
	// remain to be tried does not stop it. Defaults to false.
	RetryPermanent bool

	// TLS is the TLS client configuration for amqps:// URLs. It is cloned for
	// every dial. Defaults to nil: amqp091-go's defaults (system roots, the
	// URL's host as server name).
	TLS *tls.Config

	// Logger receives state changes at Info, and dropped events, stalls and
	// blocked connections at Warn; never a line per message. Defaults to
	// slog.Default().
	Logger *slog.Logger

	// OnEvent receives every Event in order, on one dispatcher goroutine. It
	// may call any Supervisor method, Close included. A call that runs past
	// StallThreshold is reported as a Stall event. Defaults to nil (events are
	// counted in Stats but not delivered).
	OnEvent func(Event)

	// EventBuffer bounds the events waiting for OnEvent. When it is full the
	// oldest event is dropped and counted: emitting never blocks. The buffer
	// is allocated as events come (8 slots, doubling up to the bound while
	// the handler lags) and released once they are delivered. Defaults to 256.
	EventBuffer int

	// StallThreshold is how long a user callback (event handler, ready hook,
	// consumer handler) may run before it is reported as stalled, with its
	// stack. Defaults to 1s.
	StallThreshold time.Duration

	// BlockedTimeout closes and redials a connection that the broker has kept
	// blocked (memory or disk alarm) for longer than this. Defaults to 0: wait
	// for as long as the broker blocks.
	BlockedTimeout time.Duration

	// Properties are extra client properties sent to the broker; they are
	// copied. Defaults to nil (amqp091-go's product and version properties only).
	Properties amqp.Table
}

// DefaultOptions returns Options with every default filled in except URLs,
// which has none. Each call returns a fresh value.
func DefaultOptions() Options {
	return Options{
		Heartbeat:      DefaultHeartbeat,
		DeadPeerLimit:  heartbeat.RecommendedLimit(DefaultHeartbeat),
		OwedReplyLimit: heartbeat.RecommendedOwedLimit(DefaultHeartbeat),
		TCPUserTimeout: heartbeat.RecommendedLimit(DefaultHeartbeat),
		DialTimeout:    DefaultDialTimeout,
		CloseTimeout:   DefaultCloseTimeout,
		Reconnect:      reconnect.DefaultPolicy(),
		Logger:         slog.Default(),
		EventBuffer:    DefaultEventBuffer,
		StallThreshold: DefaultStallThreshold,
	}
}

// withDefaults returns a deep-enough copy of o with zero fields defaulted:
// slices and maps are copied so that the caller's later edits cannot reach
// the supervisor.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Heartbeat == 0 {
		o.Heartbeat = d.Heartbeat
	}
	if o.DeadPeerLimit == 0 {
		o.DeadPeerLimit = heartbeat.RecommendedLimit(o.Heartbeat)
	}
	if o.OwedReplyLimit == 0 {
		o.OwedReplyLimit = heartbeat.RecommendedOwedLimit(o.Heartbeat)
	}
	if o.TCPUserTimeout == 0 {
		o.TCPUserTimeout = o.DeadPeerLimit
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = d.DialTimeout
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = d.CloseTimeout
	}
	o.Reconnect = o.Reconnect.WithDefaults()
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = d.EventBuffer
	}
	if o.StallThreshold == 0 {
		o.StallThreshold = d.StallThreshold
	}
	o.URLs = append([]string(nil), o.URLs...)
	if o.Properties != nil {
		props := make(amqp.Table, len(o.Properties))
		for k, v := range o.Properties {
			props[k] = v
		}
		o.Properties = props
	}
	if o.TLS != nil {
		o.TLS = o.TLS.Clone()
	}
	return o
}
