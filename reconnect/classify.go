package reconnect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/cenkalti/backoff/v4"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Class says whether retrying after an error can help.
type Class int

const (
	// Transient errors are retried with backoff: the network, the broker or
	// the cluster may recover on its own.
	Transient Class = iota
	// Permanent errors stop the supervisor: retrying the same configuration
	// cannot succeed and would only hide the problem.
	Permanent
)

// String returns "transient" or "permanent".
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	default:
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
}

// PermanentError marks the error it wraps as permanent, whatever Classify
// would say about the error alone.
type PermanentError struct {
	// Err is the error marked permanent.
	Err error
}

// Error returns the message of the wrapped error unchanged.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error, so errors.Is and errors.As see through
// the mark.
func (e *PermanentError) Unwrap() error { return e.Err }

// MarkPermanent returns err marked as permanent, like backoff.Permanent, so
// that Classify puts it in the Permanent class. A nil err stays nil. (It
// cannot be called Permanent: that name is the Class constant.)
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether Classify puts err in the Permanent class.
func IsPermanent(err error) bool {
	c, _ := Classify(err)
	return c == Permanent
}

// uriSentinels are the unexported sentinel errors of amqp.ParseURI (bad
// scheme, whitespace), obtained from ParseURI itself so errors.Is matches
// them wherever they are wrapped.
var uriSentinels = func() []error {
	var errs []error
	for _, bad := range []string{"amqp://white space", "http://host"} {
		if _, err := amqp.ParseURI(bad); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}()

// uriMessagePrefixes start the URI errors that amqp091-go v1.16.0 formats
// with %v, leaving no value or type to match: bad query parameters
// (ParseURI) and an unknown auth_mechanism (DialConfig). The tests produce
// each of them for real, so a change of wording fails there.
var uriMessagePrefixes = []string{
	"heartbeat is not an uint16: ",
	"connection_timeout is not an integer: ",
	"channel_max is not an uint16: ",
	"unsupported auth_mechanism: ",
}

// Classify says whether err is worth retrying, with a short reason for
// humans, such as "access refused (403)". It looks through wrapping with
// errors.Is and errors.As, so an error classifies the same however it was
// wrapped. Errors it does not know are Transient: a wrong guess of
// Transient costs retries with backoff, a wrong guess of Permanent stops the
// supervisor. A nil err is Transient with reason "no error".
//
// Permanent: errors marked with MarkPermanent or backoff.Permanent;
// context.Canceled (someone asked us to stop); AMQP 403 ACCESS_REFUSED
// (including amqp.ErrSASL, amqp.ErrCredentials and amqp.ErrVhost), 402
// INVALID_PATH, 530 NOT_ALLOWED (unknown vhost, no access to it) and 540
// NOT_IMPLEMENTED; TLS certificate verification failures and a TLS dial
// answered by a server that does not speak TLS (amqps:// against a plain
// port); invalid URLs.
//
// Transient: network errors (refused, reset, timeouts, EOF, closed
// connections), DNS failures including "no such host", since names appear and
// disappear during rollouts; AMQP 320 CONNECTION_FORCED, 541 INTERNAL_ERROR,
// 501-506 frame, syntax, command, channel and resource errors (amqp.ErrClosed
// included); 404 NOT_FOUND, 405 RESOURCE_LOCKED and 406
// PRECONDITION_FAILED, which a declaration marks permanent where a retry
// cannot help; 530 NOT_ALLOWED when RabbitMQ says a connection limit is reached
// or the vhost is down, both of which clear up; context.DeadlineExceeded and
// os.ErrDeadlineExceeded, as a dial or heartbeat timeout reports them.
func Classify(err error) (Class, string) {
	if err == nil {
		return Transient, "no error"
	}

	var mine *PermanentError
	var theirs *backoff.PermanentError
	if errors.As(err, &mine) || errors.As(err, &theirs) {
		inner := err
		if mine != nil {
			inner = mine.Err
		} else {
			inner = theirs.Err
		}
		class, reason := Classify(inner)
		if class != Permanent {
			reason += " (marked permanent)"
		}
		return Permanent, reason
	}

	// Before the network checks: a cancelled dial is an *net.OpError that
	// matches context.Canceled.
	if errors.Is(err, context.Canceled) {
		return Permanent, "canceled"
	}

	if reason, ok := tlsReason(err); ok {
		return Permanent, reason
	}

	// Before the network checks: *url.Error implements net.Error.
	if isURIError(err) {
		return Permanent, "invalid URL"
	}

	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		return classifyAMQP(amqpErr)
	}

	return Transient, networkReason(err)
}

// tlsReason names a certificate verification failure, or a TLS handshake
// answered in plain text. The specific x509 errors come first because
// *tls.CertificateVerificationError wraps them.
func tlsReason(err error) (string, bool) {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var systemRoots x509.SystemRootsError
	var verification *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &unknownAuthority):
		return "TLS: certificate signed by unknown authority", true
	case errors.As(err, &hostname):
		return "TLS: certificate is not valid for the host name", true
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "TLS: certificate expired or not yet valid", true
		}
		return "TLS: invalid certificate", true
	case errors.As(err, &systemRoots):
		return "TLS: cannot load system root certificates", true
	case errors.As(err, &verification):
		return "TLS: certificate verification failed", true
	case errors.As(err, &record) && string(record.RecordHeader[:]) == "HTTP/":
		return "TLS: the server answered in HTTP: this port does not speak AMQP " +
			"(the management UI's port? AMQP listens on 5671 for amqps://)", true
	case errors.As(err, &record):
		return "TLS: the server did not answer in TLS (amqps:// against a plain AMQP port? " +
			"use amqp:// there, or the TLS port, usually 5671)", true
	}
	return "", false
}

func isURIError(err error) bool {
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Op == "parse" {
		return true
	}
	// ParseURI returns strconv's error as is for a port out of range.
	var numErr *strconv.NumError
	if errors.As(err, &numErr) {
		return true
	}
	for _, s := range uriSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return anyInChain(err, func(e error) bool {
		msg := e.Error()
		for _, p := range uriMessagePrefixes {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	})
}

// anyInChain reports whether f holds for err or any error it wraps.
func anyInChain(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if anyInChain(e, f) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// classifyAMQP sorts AMQP reply codes. Error.Recover is no guide here:
// amqp091-go sets it for 403, which is permanent for a connection.
func classifyAMQP(e *amqp.Error) (Class, string) {
	switch e.Code {
	case amqp.AccessRefused:
		switch e {
		case amqp.ErrSASL:
			return Permanent, "no shared SASL mechanism (403)"
		case amqp.ErrCredentials:
			return Permanent, "username or password refused (403)"
		case amqp.ErrVhost:
			return Permanent, "no access to vhost (403)"
		}
		return Permanent, "access refused (403)"
	case amqp.NotAllowed:
		// RabbitMQ uses 530 both for a vhost that does not exist or may not
		// be used, and for limits that clear when other connections close or
		// the vhost restarts.
		switch {
		case strings.Contains(e.Reason, "connection limit"):
			return Transient, "connection limit reached (530)"
		case strings.Contains(e.Reason, "is down"):
			return Transient, "vhost is down (530)"
		}
		return Permanent, "not allowed (530)"
	case amqp.InvalidPath:
		return Permanent, "invalid vhost path (402)"
	case amqp.NotImplemented:
		// The broker lacks the feature; only an upgrade changes that.
		return Permanent, "not implemented by the broker (540)"
	case amqp.NotFound:
		// Another service may declare the entity; see conn.DeclareTopology
		// for refusals that are permanent because of what was declared.
		return Transient, "not found (404)"
	case amqp.ResourceLocked:
		// An exclusive queue held by a connection that is going away.
		return Transient, "resource locked (405)"
	case amqp.PreconditionFailed:
		// Outside a declaration (an unknown delivery tag) a new channel
		// fixes it; a declaration refused with 406 is marked permanent by
		// conn.DeclareTopology.
		return Transient, "precondition failed (406)"
	case amqp.ConnectionForced:
		return Transient, "connection forced (320)"
	case amqp.InternalError:
		return Transient, "broker internal error (541)"
	case amqp.FrameError:
		// amqp091-go's reader reports any failed read as a local 501 whose
		// Reason is the read error's text; a timeout there means the broker's
		// heartbeats stopped.
		if !e.Server && e != amqp.ErrFrame && e != amqp.ErrFrameTooLarge {
			if strings.Contains(e.Reason, "timeout") {
				return Transient, "heartbeat timeout (501)"
			}
			return Transient, "connection lost (501)"
		}
		return Transient, "frame error (501)"
	case amqp.SyntaxError:
		return Transient, "syntax error (502)"
	case amqp.CommandInvalid:
		return Transient, "command invalid (503)"
	case amqp.ChannelError:
		if e == amqp.ErrClosed {
			return Transient, "connection not open (504)"
		}
		return Transient, "channel error (504)"
	case amqp.UnexpectedFrame:
		return Transient, "unexpected frame (505)"
	case amqp.ResourceError:
		return Transient, "resource error (506)"
	}
	return Transient, fmt.Sprintf("AMQP error (%d)", e.Code)
}

// networkReason names a transient error; the order goes from the most
// specific cause to the most general.
func networkReason(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return "host not found (DNS)"
		case dnsErr.IsTimeout:
			return "DNS timeout"
		}
		return "DNS lookup failed"
	}
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by peer (EOF)"
	case errors.Is(err, net.ErrClosed):
		return "use of closed connection"
	case errors.As(err, &netErr):
		if netErr.Timeout() {
			return "timeout"
		}
		return "network error"
	}
	return "unknown error"
}
