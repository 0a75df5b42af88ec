package broker

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// closeTimeout bounds a Broker's shutdown even when Close's context allows
// longer: a graceful stop, then a kill, then removing the data directory.
const closeTimeout = 90 * time.Second

// Sources of a Broker, as stored in Broker.Source.
const (
	SourceURL    = "AMQP_URL"
	SourceDocker = "docker"
	SourceLocal  = "local"
)

// Broker is a RabbitMQ broker found or started by Find, with a way to inject
// faults into it.
type Broker struct {
	// URL is the AMQP URL of the broker, with the credentials of an
	// administrator user that tests may use.
	URL string
	// Source says how the broker was found: SourceURL ("AMQP_URL"),
	// SourceDocker ("docker") or SourceLocal ("local").
	Source string
	// MgmtURL is the base URL of the management HTTP API, with credentials,
	// or "" when no management API is known.
	MgmtURL string
	// TLSURL is the amqps:// URL of the TLS listener FindWith added when
	// asked (Options.TLS), with the same credentials as URL, else "".
	TLSURL string
	// Node is the Erlang node name of the broker when known (the node Find
	// started, or RABBITMQ_NODENAME), else "".
	Node string
	// Version is the RabbitMQ release of a node Find started ("4.0.5"),
	// else "".
	Version string
	// Faults injects failures into the broker. Methods that cannot work on
	// this broker return an error wrapping ErrUnsupported.
	Faults Faults

	// stop releases what Find started; nil when it started nothing.
	stop      func(ctx context.Context) error
	faults    *faults
	closeOnce sync.Once
	closed    chan struct{} // made and closed once, under closeOnce
	closeErr  error
}

func newBroker(rawURL, source string, f *faults, stop func(context.Context) error) *Broker {
	return &Broker{
		URL:    rawURL,
		Source: source,
		Faults: f,
		faults: f,
		stop:   stop,
	}
}

// Close stops and deletes only what Find started (a local node and its data
// directory, or a container); a broker reached through AMQP_URL is left as it
// is. Close is idempotent: the first call starts the shutdown, which runs to
// its end (bounded by the package's own stop timeouts) even if ctx ends first,
// and every call waits for the same result until its own ctx is done.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		// Made here, not by Find, so Close also works on a Broker literal.
		b.closed = make(chan struct{})
		if b.faults == nil {
			close(b.closed)
			return
		}
		// Faults fail fast from now on rather than talking to a dying node.
		b.faults.markClosed()
		// The shutdown must not be cut short by an impatient first caller:
		// a half-stopped node would outlive the test binary.
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		go func() {
			defer cancel()
			defer close(b.closed)
			var err error
			if b.stop != nil {
				err = b.stop(stopCtx)
			}
			b.faults.closeIdle()
			b.closeErr = err
		}()
	})
	select {
	case <-b.closed:
		return b.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Addr returns the "host:port" of the broker's AMQP listener, the upstream
// address for a fault proxy.
func (b *Broker) Addr() string {
	return amqpAddr(b.URL)
}

// URLWith returns the broker's URL with other credentials and virtual host,
// each URL-escaped. An empty vhost means the default vhost "/".
func (b *Broker) URLWith(user, pass, vhost string) string {
	return urlWith(b.URL, user, pass, vhost)
}

// URLVia returns the broker's URL with addr ("host:port", such as a fault
// proxy's address) in place of the broker's own.
func (b *Broker) URLVia(addr string) string {
	u, err := url.Parse(b.URL)
	if err != nil {
		return ""
	}
	u.Host = addr
	return u.String()
}

// amqpAddr returns host:port of an AMQP URL, with the scheme's default port
// when the URL has none, or "" if the URL does not parse.
func amqpAddr(rawURL string) string {
	u, err := amqp.ParseURI(rawURL)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

func urlWith(rawURL, user, pass, vhost string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	u.User = url.UserPassword(user, pass)
	if vhost == "" {
		u.Path, u.RawPath = "/", ""
	} else {
		// RawPath keeps a "/" inside the vhost name escaped as %2F.
		u.Path, u.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
	}
	return u.String()
}

// redact returns rawURL with its password replaced, for logs and errors.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
