package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/warrenmq/warren/conn"
)

// config is the service's configuration. Every field comes from one
// environment variable (named in its comment) and has a documented default;
// the README of this directory lists them all.
type config struct {
	// AMQP_URLS: comma-separated amqp:// or amqps:// URLs, tried in turn.
	// Required. They may hold credentials: they are never logged, only
	// their redacted form (conn.RedactURL).
	URLs []string
	// SERVICE_NAME: the connection names the broker shows (NAME-publish,
	// NAME-consume) and the consumer tag. Default "orders-service".
	Name string
	// HTTP_ADDR: where the HTTP server listens. Default "127.0.0.1:8080";
	// set ":8080" in a container.
	HTTPAddr string
	// QUEUE: the exchange and queue of the orders. Default "orders".
	Queue string

	// AMQP_HEARTBEAT: the heartbeat proposed to the broker. Default 10s.
	Heartbeat time.Duration
	// AMQP_DEAD_PEER_LIMIT: how long the broker may stay silent before the
	// connection is declared dead. Default 0: 5/4 of the heartbeat.
	DeadPeerLimit time.Duration
	// AMQP_DIAL_TIMEOUT: bounds one dial (TCP, TLS, AMQP handshake).
	// Default 10s.
	DialTimeout time.Duration
	// AMQP_BLOCKED_TIMEOUT: redial a connection the broker keeps blocked
	// (resource alarm) this long. Default 0: wait as long as it blocks.
	BlockedTimeout time.Duration
	// AMQP_RETRY_PERMANENT: keep retrying errors warren deems permanent (a
	// refused login, an unknown vhost) instead of exiting with status 1.
	// Default true: a broker under a resource alarm or overload has been
	// seen refusing a login it accepted a second before, and exiting then
	// would take down every instance at once. Bad credentials then show as
	// /readyz failing, with the reason, rather than as a crash loop.
	RetryPermanent bool
	// RECONNECT_INITIAL, RECONNECT_MAX, RECONNECT_MULTIPLIER and
	// RECONNECT_JITTER: the reconnect schedule. Defaults 100ms, 10s, 1.2 and
	// 0.4 (reconnect.Policy's).
	ReconnectInitial    time.Duration
	ReconnectMax        time.Duration
	ReconnectMultiplier float64
	ReconnectJitter     float64

	// CONSUMER_PREFETCH: deliveries the broker sends ahead of acks. Default
	// 32 (conn.DefaultPrefetch), or twice the concurrency if larger.
	Prefetch int
	// CONSUMER_CONCURRENCY: orders handled at once. Default 4.
	Concurrency int
	// DEDUPE_WINDOW and DEDUPE_SIZE: how long and how many handled order
	// ids the consumer remembers to drop duplicates. Defaults 10m and
	// 100000 (conn.DedupeOptions').
	DedupeWindow time.Duration
	DedupeSize   int

	// PUBLISH_TIMEOUT: the longest a POST waits for the broker's confirm
	// before it answers 503. Default 5s.
	PublishTimeout time.Duration
	// MAX_IN_FLIGHT: publishes waiting for a confirm at once; a POST beyond
	// it gets 503 at once, and /readyz reports not ready. Default 256.
	MaxInFlight int
	// MAX_BODY: the largest order body in bytes; larger gets 413.
	// Default 65536.
	MaxBody int64

	// DRAIN_PERIOD: after SIGTERM, how long /readyz reports not ready while
	// requests are still served, so load balancers stop sending before the
	// listener closes. Default 5s.
	DrainPeriod time.Duration
	// SHUTDOWN_TIMEOUT: after the drain period, bounds finishing the
	// requests in flight and closing the consumer, publisher and
	// connections. Default 10s. The whole shutdown takes at most
	// DRAIN_PERIOD + SHUTDOWN_TIMEOUT.
	ShutdownTimeout time.Duration

	// HTTP_READ_HEADER_TIMEOUT, HTTP_READ_TIMEOUT and HTTP_IDLE_TIMEOUT:
	// bound a client's request headers, its whole request, and an idle
	// kept-alive connection. Defaults 5s, 10s and 60s. The write timeout is
	// PUBLISH_TIMEOUT plus HTTP_READ_TIMEOUT.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration

	// LOG_LEVEL: debug, info, warn or error. Default info. At debug the
	// consumer logs every order it handles.
	LogLevel slog.Level
	// LOG_FORMAT: text or json. Default text.
	LogFormat string

	// TRACES: where the OpenTelemetry spans go: off, stdout (one JSON
	// object per span on standard output) or otlp (OTLP over HTTP, set up
	// by the standard OTEL_EXPORTER_OTLP_* variables, e.g.
	// OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318). Default off, or
	// otlp when OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
	Traces string
	// TracerProvider is not read from the environment: code that runs the
	// service in process (its tests) may set one, which then makes the
	// spans whatever TRACES says, and which the service does not shut
	// down. Default nil.
	TracerProvider trace.TracerProvider
}

// defaultConfig returns the defaults; URLs has none.
func defaultConfig() config {
	return config{
		Name:                "orders-service",
		HTTPAddr:            "127.0.0.1:8080",
		Queue:               "orders",
		Heartbeat:           conn.DefaultHeartbeat,
		DialTimeout:         conn.DefaultDialTimeout,
		RetryPermanent:      true,
		ReconnectInitial:    100 * time.Millisecond,
		ReconnectMax:        10 * time.Second,
		ReconnectMultiplier: 1.2,
		ReconnectJitter:     0.4,
		Concurrency:         4,
		DedupeWindow:        conn.DefaultDedupeWindow,
		DedupeSize:          conn.DefaultDedupeSize,
		PublishTimeout:      5 * time.Second,
		MaxInFlight:         conn.DefaultMaxInFlight,
		MaxBody:             64 << 10,
		DrainPeriod:         5 * time.Second,
		ShutdownTimeout:     10 * time.Second,
		ReadHeaderTimeout:   5 * time.Second,
		ReadTimeout:         10 * time.Second,
		IdleTimeout:         60 * time.Second,
		LogLevel:            slog.LevelInfo,
		LogFormat:           "text",
		Traces:              tracesOff,
	}
}

// withDefaults fills the zero fields of c from defaultConfig, so that a
// config written in code needs only what differs. DrainPeriod, LogLevel,
// RetryPermanent and BlockedTimeout keep their zero values, which mean
// something (no drain, info, exit on a refusal, wait).
func (c config) withDefaults() config {
	d := defaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = d.HTTPAddr
	}
	if c.Queue == "" {
		c.Queue = d.Queue
	}
	set(&c.Heartbeat, d.Heartbeat)
	set(&c.DialTimeout, d.DialTimeout)
	set(&c.ReconnectInitial, d.ReconnectInitial)
	set(&c.ReconnectMax, d.ReconnectMax)
	if c.ReconnectMultiplier == 0 {
		c.ReconnectMultiplier = d.ReconnectMultiplier
	}
	if c.ReconnectJitter == 0 {
		c.ReconnectJitter = d.ReconnectJitter
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	set(&c.DedupeWindow, d.DedupeWindow)
	if c.DedupeSize == 0 {
		c.DedupeSize = d.DedupeSize
	}
	set(&c.PublishTimeout, d.PublishTimeout)
	if c.MaxInFlight == 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.MaxBody == 0 {
		c.MaxBody = d.MaxBody
	}
	set(&c.ShutdownTimeout, d.ShutdownTimeout)
	set(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	set(&c.ReadTimeout, d.ReadTimeout)
	set(&c.IdleTimeout, d.IdleTimeout)
	if c.LogFormat == "" {
		c.LogFormat = d.LogFormat
	}
	if c.Traces == "" {
		c.Traces = d.Traces
	}
	return c
}

// configFromEnv reads the configuration through getenv and reports every
// problem at once. No error repeats a URL: it may hold a password.
func configFromEnv(getenv func(string) string) (config, error) {
	c := defaultConfig()
	p := envParser{getenv: getenv}
	for _, u := range strings.Split(getenv("AMQP_URLS"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.URLs = append(c.URLs, u)
		}
	}
	if len(c.URLs) == 0 {
		p.errs = append(p.errs, errors.New("AMQP_URLS is required (comma-separated amqp:// URLs)"))
	}
	p.str("SERVICE_NAME", &c.Name)
	p.str("HTTP_ADDR", &c.HTTPAddr)
	p.str("QUEUE", &c.Queue)
	p.duration("AMQP_HEARTBEAT", &c.Heartbeat, time.Second)
	p.duration("AMQP_DEAD_PEER_LIMIT", &c.DeadPeerLimit, 0)
	p.duration("AMQP_DIAL_TIMEOUT", &c.DialTimeout, time.Millisecond)
	p.duration("AMQP_BLOCKED_TIMEOUT", &c.BlockedTimeout, 0)
	p.duration("RECONNECT_INITIAL", &c.ReconnectInitial, time.Millisecond)
	p.duration("RECONNECT_MAX", &c.ReconnectMax, time.Millisecond)
	p.boolean("AMQP_RETRY_PERMANENT", &c.RetryPermanent)
	p.float("RECONNECT_MULTIPLIER", &c.ReconnectMultiplier, 1, 10)
	p.float("RECONNECT_JITTER", &c.ReconnectJitter, 0, 1)
	p.integer("CONSUMER_PREFETCH", &c.Prefetch, 0, 65535)
	p.integer("CONSUMER_CONCURRENCY", &c.Concurrency, 1, 1024)
	p.duration("DEDUPE_WINDOW", &c.DedupeWindow, time.Second)
	p.integer("DEDUPE_SIZE", &c.DedupeSize, 1, 10_000_000)
	p.duration("PUBLISH_TIMEOUT", &c.PublishTimeout, time.Millisecond)
	p.integer("MAX_IN_FLIGHT", &c.MaxInFlight, 1, 1_000_000)
	var maxBody int
	p.integer("MAX_BODY", &maxBody, 1, 128<<20)
	if maxBody > 0 {
		c.MaxBody = int64(maxBody)
	}
	p.duration("DRAIN_PERIOD", &c.DrainPeriod, 0)
	p.duration("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, time.Millisecond)
	p.duration("HTTP_READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout, time.Millisecond)
	p.duration("HTTP_READ_TIMEOUT", &c.ReadTimeout, time.Millisecond)
	p.duration("HTTP_IDLE_TIMEOUT", &c.IdleTimeout, time.Millisecond)
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			p.errs = append(p.errs, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", v))
		}
	}
	if v := getenv("LOG_FORMAT"); v != "" {
		if v != "text" && v != "json" {
			p.errs = append(p.errs, fmt.Errorf("LOG_FORMAT %q: want text or json", v))
		}
		c.LogFormat = v
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		c.Traces = tracesOTLP
	}
	if v := getenv("TRACES"); v != "" {
		if v != tracesOff && v != tracesStdout && v != tracesOTLP {
			p.errs = append(p.errs, fmt.Errorf("TRACES %q: want off, stdout or otlp", v))
		}
		c.Traces = v
	}
	return c, errors.Join(p.errs...)
}

// LogValue is what the service logs of its configuration at start: URLs
// redacted, everything else as is.
func (c config) LogValue() slog.Value {
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i] = conn.RedactURL(u)
	}
	return slog.GroupValue(
		slog.String("urls", strings.Join(urls, ",")),
		slog.String("name", c.Name),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("queue", c.Queue),
		slog.Duration("heartbeat", c.Heartbeat),
		slog.Duration("publish_timeout", c.PublishTimeout),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Int("prefetch", c.Prefetch),
		slog.Int("concurrency", c.Concurrency),
		slog.Duration("drain_period", c.DrainPeriod),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("traces", c.Traces),
	)
}

// envParser reads typed variables and collects what is wrong with them. A
// variable that is unset or empty keeps its default.
type envParser struct {
	getenv func(string) string
	errs   []error
}

func (p *envParser) str(name string, dst *string) {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		*dst = v
	}
}

func (p *envParser) duration(name string, dst *time.Duration, least time.Duration) {
	v := p.getenv(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least || d < 0 {
		p.errs = append(p.errs, fmt.Errorf("%s %q: want a duration of at least %v, such as 5s", name, v, least))
		return
	}
	*dst = d
}

func (p *envParser) integer(name string, dst *int, least, most int) {
	v := p.getenv(name)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least || n > most {
		p.errs = append(p.errs, fmt.Errorf("%s %q: want a whole number from %d to %d", name, v, least, most))
		return
	}
	*dst = n
}

func (p *envParser) boolean(name string, dst *bool) {
	v := p.getenv(name)
	if v == "" {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s %q: want true or false", name, v))
		return
	}
	*dst = b
}

func (p *envParser) float(name string, dst *float64, least, most float64) {
	v := p.getenv(name)
	if v == "" {
		return
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= least && f <= most) { // NaN fails both
		p.errs = append(p.errs, fmt.Errorf("%s %q: want a number from %g to %g", name, v, least, most))
		return
	}
	*dst = f
}
