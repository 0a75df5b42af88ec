package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// greetWait is how long an AMQP server may take to answer the protocol
// header: before probe looks at what the port speaks, and again on the
// connection that looks. RabbitMQ answers in milliseconds; an HTTP server
// (the management UI's port) waits silently for a request line until its own
// timeout, about 5 s for RabbitMQ's, then closes: amqp091-go reports that as
// "501 EOF".
const greetWait = 1500 * time.Millisecond

// amqpHeader opens every AMQP 0-9-1 connection.
var amqpHeader = []byte("AMQP\x00\x00\x09\x01")

// errNotAMQP is wrapped by the error of a port that answered, but not in
// AMQP. Retrying the same URL cannot help.
var errNotAMQP = errors.New("this port does not speak AMQP")

// errNoGreeting is wrapped by the error of a port that accepted the
// connection and said nothing within greetWait: most likely not AMQP, but a
// broker too loaded to answer is possible, so it is not called permanent.
var errNoGreeting = errors.New("this port does not seem to speak AMQP")

// sniff connects to the host and port of a plain amqp:// URL, sends the AMQP
// protocol header and reads what comes back, within greetWait and ctx. It
// returns nil when the port answers in AMQP or cannot be reached at all
// (the supervisor's own error says that better), else an error wrapping
// errNotAMQP or errNoGreeting that says what the port speaks instead.
func sniff(ctx context.Context, rawURL string) error {
	uri, err := amqp.ParseURI(rawURL)
	if err != nil || uri.Scheme != "amqp" {
		return nil
	}
	addr := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	c, cancel, err := dialGreetWait(ctx, addr)
	if err != nil {
		return nil
	}
	defer cancel()
	if _, err := c.Write(amqpHeader); err != nil {
		return nil
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(c, buf, 5)
	verdict := greeting(addr, buf[:n], err)
	if errors.Is(verdict, errNoGreeting) && speaksHTTP(ctx, addr) {
		return fmt.Errorf("%w: %s answers HTTP requests (the management UI's port? AMQP listens on 5672, or 5671 for amqps)", errNotAMQP, addr)
	}
	return verdict
}

// speaksHTTP reports whether addr answers an HTTP request in HTTP within
// greetWait. An HTTP server meets the AMQP header in silence, waiting for
// the end of a request line (RabbitMQ's management port closes after 5 s
// without a byte), so silence alone cannot tell it from a slow broker; a
// request can.
func speaksHTTP(ctx context.Context, addr string) bool {
	c, cancel, err := dialGreetWait(ctx, addr)
	if err != nil {
		return false
	}
	defer cancel()
	if _, err := io.WriteString(c, "HEAD / HTTP/1.0\r\nUser-Agent: warren-probe\r\n\r\n"); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "HTTP/"
}

// greeting judges the first bytes a port sent back to the AMQP header, and
// the error that ended the read.
func greeting(addr string, got []byte, readErr error) error {
	var netErr net.Error
	switch {
	case len(got) > 0 && got[0] == 1: // a method frame: connection.start
		return nil
	case bytes.HasPrefix(got, []byte("AMQP")): // the server's own protocol version
		return nil
	case bytes.HasPrefix(got, []byte("HTTP/")):
		return fmt.Errorf("%w: %s answered in HTTP (the management UI's port? AMQP listens on 5672, or 5671 for amqps)", errNotAMQP, addr)
	case len(got) >= 2 && (got[0] == 0x15 || got[0] == 0x16) && got[1] == 3:
		return fmt.Errorf("%w in plain text: %s answered in TLS; use amqps://", errNotAMQP, addr)
	case len(got) > 0:
		return fmt.Errorf("%w: %s answered %q", errNotAMQP, addr, got)
	case errors.As(readErr, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %s sent no AMQP greeting within %v (an HTTP port, such as the management UI's, waits silently; or the broker is overloaded)", errNoGreeting, addr, greetWait)
	case readErr != nil:
		return fmt.Errorf("%w: %s closed the connection without an AMQP greeting", errNotAMQP, addr)
	}
	return nil
}

// dialGreetWait connects to addr with greetWait (and ctx) as the deadline of
// the dial and of everything done on the connection. cancel closes it.
func dialGreetWait(ctx context.Context, addr string) (c net.Conn, cancel func(), err error) {
	ctx, stop := context.WithTimeout(ctx, greetWait)
	var d net.Dialer
	c, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		stop()
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return c, func() { c.Close(); stop() }, nil
}
