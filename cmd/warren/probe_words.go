package main

import (
	"errors"
	"strings"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/reconnect"
)

// probeCause digs the failure out of the error of a supervisor that gave up:
// "warren: reconnect: gave up after 1 failed dials in a row (MaxAttempts 1);
// last error: warren: dial …" says the probe's own policy first, which the
// operator did not choose and cannot act on.
func probeCause(err error) error {
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if inner := errors.Unwrap(err); inner != nil && errors.Is(err, reconnect.ErrGaveUp) {
			return probeCause(inner)
		}
		return err
	}
	for _, e := range multi.Unwrap() {
		if !errors.Is(e, reconnect.ErrGaveUp) {
			return probeCause(e)
		}
	}
	return err
}

// probeHints turn Classify's reason into what an operator should check.
var probeHints = []struct{ reason, hint string }{
	{"connection refused", "nothing listens there: is RabbitMQ running, and is the port right (5672 for amqp://, 5671 for amqps://)?"},
	{"host not found", "the host name does not resolve: check its spelling and DNS"},
	{"DNS", "the host name could not be resolved: check DNS"},
	{"timeout", "no answer in time: a firewall, a wrong host, or an overloaded broker"},
	{"username or password refused", "check the user name and password"},
	{"no shared SASL mechanism", "the broker offers none of the client's login mechanisms"},
	{"no access to vhost", "the vhost does not exist or the user has no permissions on it"},
	{"not allowed (530)", "the vhost does not exist or the user may not use it"},
	{"access refused", "the broker refused the user: check its permissions"},
	{"unknown authority", "the broker's certificate is not signed by a CA this machine trusts: give the CA with ?cacertfile=…"},
	{"not valid for the host name", "the broker's certificate does not name the host in the URL: connect by a name the certificate holds"},
	{"expired", "the broker's certificate has expired or is not valid yet"},
	{"connection lost", "the broker closed the connection during the handshake"},
	{"EOF", "the broker closed the connection during the handshake"},
}

// operatorWords says what failed, in words an operator can act on, without
// the library's internals.
func operatorWords(err error) string {
	switch {
	case errors.Is(err, conn.ErrInvalidOptions):
		// "warren: invalid options: URLs[0] amqp//***@host: missing …": the
		// report shows the URL on a line of its own.
		msg := strings.TrimPrefix(err.Error(), conn.ErrInvalidOptions.Error()+": ")
		if rest, ok := strings.CutPrefix(msg, "URLs[0] "); ok {
			if _, problem, found := strings.Cut(rest, ": "); found {
				msg = problem
			}
		}
		return "invalid URL: " + msg
	case errors.Is(err, errNotAMQP), errors.Is(err, errNoGreeting):
		return err.Error()
	}
	_, reason := reconnect.Classify(err)
	for _, h := range probeHints {
		if strings.Contains(reason, h.reason) {
			return reason + ": " + h.hint
		}
	}
	return reason
}
