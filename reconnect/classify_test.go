package reconnect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Every error below is produced for real: by amqp091-go from bytes on the
// wire (see fakebroker_test.go), by its exported values, by ParseURI, by
// crypto/tls verifying a certificate, or by the kernel through net.
func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		err    func(t *testing.T) error
		class  Class
		reason string
	}{
		{"nil", func(*testing.T) error { return nil }, Transient, "no error"},

		// Handshake refusals, as amqp091-go reports them from a broker's reply.
		{"login refused by connection.close 403", brokerRefuses(func(b *brokerConn) error {
			if err := b.login(); err != nil {
				return err
			}
			return b.close(amqp.AccessRefused, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.")
		}), Permanent, "access refused (403)"},
		{"login refused by dropping the socket (ErrCredentials)", brokerRefuses(func(b *brokerConn) error {
			return b.login() // then the deferred Close drops the socket without a word
		}), Permanent, "username or password refused (403)"},
		{"no shared SASL mechanism (ErrSASL)", brokerRefuses(func(b *brokerConn) error {
			return b.greet("CRAM-MD5")
		}), Permanent, "no shared SASL mechanism (403)"},
		{"unknown vhost 530", brokerRefuses(func(b *brokerConn) error {
			if err := b.open(); err != nil {
				return err
			}
			return b.close(amqp.NotAllowed, "NOT_ALLOWED - vhost nope not found")
		}), Permanent, "not allowed (530)"},
		{"vhost access refused 530", brokerRefuses(func(b *brokerConn) error {
			if err := b.open(); err != nil {
				return err
			}
			return b.close(amqp.NotAllowed, "NOT_ALLOWED - access to vhost '/' refused for user 'guest'")
		}), Permanent, "not allowed (530)"},
		{"vhost refused by dropping the socket (ErrVhost)", brokerRefuses(func(b *brokerConn) error {
			return b.open()
		}), Permanent, "no access to vhost (403)"},
		{"invalid path 402", brokerRefuses(func(b *brokerConn) error {
			if err := b.open(); err != nil {
				return err
			}
			return b.close(amqp.InvalidPath, "INVALID_PATH - bad vhost name")
		}), Permanent, "invalid vhost path (402)"},
		{"vhost connection limit 530", brokerRefuses(func(b *brokerConn) error {
			if err := b.open(); err != nil {
				return err
			}
			return b.close(amqp.NotAllowed,
				"NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached")
		}), Transient, "connection limit reached (530)"},
		{"user connection limit 530", brokerRefuses(func(b *brokerConn) error {
			if err := b.open(); err != nil {
				return err
			}
			return b.close(amqp.NotAllowed,
				"NOT_ALLOWED - connection refused for user 'guest': user connection limit (1) is reached")
		}), Transient, "connection limit reached (530)"},
		{"vhost down 530", brokerRefuses(func(b *brokerConn) error {
			if err := b.open(); err != nil {
				return err
			}
			return b.close(amqp.NotAllowed, "NOT_ALLOWED - access to vhost '/' refused for user 'guest': vhost '/' is down")
		}), Transient, "vhost is down (530)"},

		// An open connection closed by the broker, as NotifyClose reports it.
		{"connection forced 320", brokerCloses(amqp.ConnectionForced,
			"CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"), Transient, "connection forced (320)"},
		{"internal error 541", brokerCloses(amqp.InternalError, "INTERNAL_ERROR"), Transient, "broker internal error (541)"},
		{"socket dropped (501 EOF)", brokerCloses(0, ""), Transient, "connection lost (501)"},
		{"heartbeats stop (501 i/o timeout)", brokerGoesSilent, Transient, "heartbeat timeout (501)"},

		// amqp091-go's exported errors.
		{"ErrClosed", value(amqp.ErrClosed), Transient, "connection not open (504)"},
		{"ErrChannelMax", value(amqp.ErrChannelMax), Transient, "channel error (504)"},
		{"ErrSyntax", value(amqp.ErrSyntax), Transient, "syntax error (502)"},
		{"ErrFrame", value(amqp.ErrFrame), Transient, "frame error (501)"},
		{"ErrFrameTooLarge", value(amqp.ErrFrameTooLarge), Transient, "frame error (501)"},
		{"ErrCommandInvalid", value(amqp.ErrCommandInvalid), Transient, "command invalid (503)"},
		{"ErrUnexpectedFrame", value(amqp.ErrUnexpectedFrame), Transient, "unexpected frame (505)"},
		{"ErrCredentials", value(amqp.ErrCredentials), Permanent, "username or password refused (403)"},
		{"ErrSASL", value(amqp.ErrSASL), Permanent, "no shared SASL mechanism (403)"},
		{"ErrVhost", value(amqp.ErrVhost), Permanent, "no access to vhost (403)"},

		// Channel-level replies, as a hook's declaration or a consumer meets them.
		{"not found 404", value(&amqp.Error{Code: amqp.NotFound, Server: true}), Transient, "not found (404)"},
		{"resource locked 405", value(&amqp.Error{Code: amqp.ResourceLocked, Server: true}), Transient, "resource locked (405)"},
		{"precondition failed 406", value(&amqp.Error{Code: amqp.PreconditionFailed, Server: true}), Transient, "precondition failed (406)"},
		{"not implemented 540", value(&amqp.Error{Code: amqp.NotImplemented, Server: true}), Permanent, "not implemented by the broker (540)"},

		// TLS verification with the default verifier.
		{"TLS unknown authority", tlsDial(tlsCase{}), Permanent, "TLS: certificate signed by unknown authority"},
		{"TLS unknown authority through amqp.DialTLS", func(t *testing.T) error {
			addr := serveTLS(t, selfSigned(t, time.Now().Add(time.Hour)))
			_, err := amqp.DialTLS("amqps://guest:guest@"+addr+"/", &tls.Config{ServerName: "localhost"})
			return err
		}, Permanent, "TLS: certificate signed by unknown authority"},
		{"TLS host name mismatch", tlsDial(tlsCase{trusted: true, serverName: "wrong.example"}), Permanent,
			"TLS: certificate is not valid for the host name"},
		{"TLS to a plain AMQP port", func(t *testing.T) error {
			// RabbitMQ's plain port answers a TLS ClientHello with the
			// AMQP protocol header, then closes.
			plain := startFakeBroker(t, func(b *brokerConn) error {
				_, err := b.c.Write([]byte("AMQP\x00\x00\x09\x01"))
				return err
			})
			_, err := amqp.DialTLS(strings.Replace(plain, "amqp://", "amqps://", 1), &tls.Config{ServerName: "localhost"})
			return err
		}, Permanent, "TLS: the server did not answer in TLS (amqps:// against a plain AMQP port? " +
			"use amqp:// there, or the TLS port, usually 5671)"},
		{"TLS expired certificate", tlsDial(tlsCase{trusted: true, expired: true}), Permanent,
			"TLS: certificate expired or not yet valid"},

		// Invalid URLs.
		{"URL with whitespace", parseURI("amqp://white space/"), Permanent, "invalid URL"},
		{"URL with a bad scheme", parseURI("http://host/"), Permanent, "invalid URL"},
		{"URL with a bad escape", parseURI("amqp://user:pa%zz@host/"), Permanent, "invalid URL"},
		{"URL with a port out of range", parseURI("amqp://host:99999999999/"), Permanent, "invalid URL"},
		{"URL with a bad heartbeat", parseURI("amqp://host/?heartbeat=soon"), Permanent, "invalid URL"},
		{"URL with a bad connection_timeout", parseURI("amqp://host/?connection_timeout=1s"), Permanent, "invalid URL"},
		{"URL with a bad channel_max", parseURI("amqp://host/?channel_max=70000"), Permanent, "invalid URL"},
		{"URL with an unknown auth_mechanism", func(t *testing.T) error {
			// The address is closed: a refused dial would show that
			// amqp091-go got past the URL, and classify as transient.
			_, err := amqp.Dial("amqp://guest:guest@" + closedAddr(t) + "/?auth_mechanism=kerberos")
			return err
		}, Permanent, "invalid URL"},

		// Network failures.
		{"connection refused through amqp.Dial", func(t *testing.T) error {
			_, err := amqp.Dial("amqp://guest:guest@" + closedAddr(t) + "/")
			return err
		}, Transient, "connection refused"},
		{"host not found", func(t *testing.T) error {
			// Not a valid DNS name, so the resolver says so without asking a
			// server.
			_, err := (&net.Dialer{Timeout: defaultTestTimeout}).Dial("tcp", "no_such_host!:5672")
			return err
		}, Transient, "host not found (DNS)"},
		{"DNS timeout", dnsTimeout, Transient, "DNS timeout"},
		{"connection reset", peerDoes(func(c *net.TCPConn) {
			_ = c.SetLinger(0) // close with RST
			c.Close()
		}, readOnce), Transient, "connection reset"},
		{"EOF", peerDoes(func(c *net.TCPConn) { c.Close() }, readOnce), Transient, "connection closed by peer (EOF)"},
		{"unexpected EOF", peerDoes(func(c *net.TCPConn) {
			_, _ = c.Write([]byte("AMQ"))
			c.Close()
		}, func(c net.Conn) error {
			_, err := io.ReadFull(c, make([]byte, 8))
			return err
		}), Transient, "connection closed by peer (EOF)"},
		{"read deadline exceeded (dead peer)", peerDoes(nil, func(c net.Conn) error {
			_ = c.SetReadDeadline(time.Now().Add(-time.Second))
			return readOnce(c)
		}), Transient, "timeout"},
		{"use of closed connection", peerDoes(nil, func(c net.Conn) error {
			c.Close()
			return readOnce(c)
		}), Transient, "use of closed connection"},
		{"dial timeout", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
			defer cancel()
			_, err := (&net.Dialer{}).DialContext(ctx, "tcp", closedAddr(t))
			return err
		}, Transient, "timeout"},
		{"context deadline", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
			defer cancel()
			return ctx.Err()
		}, Transient, "timeout"},
		{"unknown error", func(*testing.T) error { return errors.New("something odd") }, Transient, "unknown error"},

		// Cancellation and explicit marks.
		{"cancelled dial", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := (&net.Dialer{}).DialContext(ctx, "tcp", closedAddr(t))
			return err
		}, Permanent, "canceled"},
		{"context canceled", func(*testing.T) error { return context.Canceled }, Permanent, "canceled"},
		{"MarkPermanent on a transient error", func(t *testing.T) error {
			_, err := amqp.Dial("amqp://guest:guest@" + closedAddr(t) + "/")
			return MarkPermanent(err)
		}, Permanent, "connection refused (marked permanent)"},
		{"MarkPermanent on a permanent error", func(*testing.T) error { return MarkPermanent(amqp.ErrCredentials) },
			Permanent, "username or password refused (403)"},
		{"backoff.Permanent", func(t *testing.T) error {
			_, err := amqp.Dial("amqp://guest:guest@" + closedAddr(t) + "/")
			return backoff.Permanent(err)
		}, Permanent, "connection refused (marked permanent)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if err == nil && tt.reason != "no error" {
				t.Fatal("the scenario produced no error")
			}
			wrapped := fmt.Errorf("conn: dial: %w", err)
			if err == nil {
				wrapped = nil
			}
			for _, e := range []error{err, wrapped} {
				class, reason := Classify(e)
				if class != tt.class || reason != tt.reason {
					t.Errorf("Classify(%v) = %v, %q; want %v, %q", e, class, reason, tt.class, tt.reason)
				}
				if got := IsPermanent(e); got != (tt.class == Permanent) {
					t.Errorf("IsPermanent(%v) = %v, want %v", e, got, tt.class == Permanent)
				}
			}
		})
	}
}

func TestClassString(t *testing.T) {
	for _, tt := range []struct {
		c    Class
		want string
	}{{Transient, "transient"}, {Permanent, "permanent"}, {Class(7), "Class(7)"}} {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Class(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
}

func TestMarkPermanent(t *testing.T) {
	if err := MarkPermanent(nil); err != nil {
		t.Errorf("MarkPermanent(nil) = %v, want nil", err)
	}
	cause := amqp.ErrClosed
	err := MarkPermanent(cause)
	if err.Error() != cause.Error() {
		t.Errorf("MarkPermanent(err).Error() = %q, want the cause's message %q", err, cause)
	}
	if !errors.Is(err, amqp.ErrClosed) {
		t.Error("errors.Is(MarkPermanent(ErrClosed), ErrClosed) = false, want true")
	}
	var pe *PermanentError
	if !errors.As(err, &pe) || pe.Err != cause {
		t.Errorf("errors.As(MarkPermanent(err), *PermanentError) = %v, want the mark around the cause", pe)
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, bc := range []struct {
		name string
		err  error
	}{
		{"amqp 320", fmt.Errorf("conn: %w", &amqp.Error{Code: amqp.ConnectionForced, Server: true})},
		{"net refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
		{"unknown", errors.New("something odd")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Classify(bc.err)
			}
		})
	}
}

// value returns a scenario yielding err as it is.
func value(err error) func(*testing.T) error {
	return func(*testing.T) error { return err }
}

func parseURI(uri string) func(*testing.T) error {
	return func(*testing.T) error {
		_, err := amqp.ParseURI(uri)
		return err
	}
}

// brokerRefuses runs a handshake against a fake broker that follows script
// and returns amqp.Dial's error.
func brokerRefuses(script func(b *brokerConn) error) func(*testing.T) error {
	return func(t *testing.T) error {
		url := startFakeBroker(t, script)
		c, err := amqp.Dial(url)
		if err == nil {
			c.Close()
		}
		return err
	}
}

// brokerCloses opens a connection to a fake broker which then closes it with
// code, or drops the socket when code is 0, and returns the error NotifyClose
// reports.
func brokerCloses(code uint16, text string) func(*testing.T) error {
	return func(t *testing.T) error {
		ready := make(chan struct{})
		url := startFakeBroker(t, func(b *brokerConn) error {
			if err := b.established(); err != nil {
				return err
			}
			select { // until the client listens for the close
			case <-ready:
			case <-time.After(defaultTestTimeout):
				return errors.New("client never got ready")
			}
			if code == 0 {
				return nil
			}
			return b.close(code, text)
		})
		c, err := amqp.Dial(url)
		if err != nil {
			t.Fatalf("amqp.Dial(fake broker) = %v", err)
		}
		defer c.Close()
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		close(ready)
		select {
		case e := <-closed:
			if e == nil {
				t.Fatal("NotifyClose delivered no error")
			}
			return e
		case <-time.After(defaultTestTimeout):
			t.Fatalf("connection not closed after %v", defaultTestTimeout)
			return nil
		}
	}
}

// brokerGoesSilent opens a connection with a 1 s heartbeat to a fake broker
// that sends one heartbeat and then nothing, and returns the error
// NotifyClose reports when amqp091-go declares the broker dead (after three
// half-intervals, 1.5 s).
func brokerGoesSilent(t *testing.T) error {
	ready := make(chan struct{})
	url := startFakeBroker(t, func(b *brokerConn) error {
		if err := b.established(); err != nil {
			return err
		}
		select {
		case <-ready:
		case <-time.After(defaultTestTimeout):
			return errors.New("client never got ready")
		}
		// One frame after Dial returned arms the client's read deadline.
		if err := b.heartbeat(); err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, b.r) // until the client gives up and closes
		return nil
	})
	c, err := amqp.DialConfig(url, amqp.Config{Heartbeat: time.Second})
	if err != nil {
		t.Fatalf("amqp.DialConfig(fake broker) = %v", err)
	}
	defer c.Close()
	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	close(ready)
	select {
	case e := <-closed:
		if e == nil {
			t.Fatal("NotifyClose delivered no error")
		}
		return e
	case <-time.After(defaultTestTimeout):
		t.Fatalf("connection not declared dead after %v", defaultTestTimeout)
		return nil
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func readOnce(c net.Conn) error {
	_, err := c.Read(make([]byte, 1))
	return err
}

// peerDoes connects to a loopback peer that runs server on its end (nil:
// nothing), then returns what client gets on ours.
func peerDoes(server func(c *net.TCPConn), client func(c net.Conn) error) func(*testing.T) error {
	return func(t *testing.T) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		defer ln.Close()
		accepted := make(chan *net.TCPConn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c.(*net.TCPConn)
		}()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), defaultTestTimeout)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		peer, ok := <-accepted
		if !ok {
			t.Fatal("accept failed")
		}
		defer peer.Close()
		if server != nil {
			server(peer)
		}
		_ = c.SetDeadline(time.Now().Add(defaultTestTimeout))
		if client == nil {
			return nil
		}
		return client(c)
	}
}

// dnsTimeout resolves a name through a DNS server that never answers.
func dnsTimeout(t *testing.T) error {
	blackhole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	defer blackhole.Close()
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", blackhole.LocalAddr().String())
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestShortTimeout)
	defer cancel()
	_, err = r.LookupHost(ctx, "broker.example")
	return err
}

type tlsCase struct {
	trusted    bool   // the client trusts the server's certificate
	expired    bool   // the certificate's validity ended an hour ago
	serverName string // what the client expects; "localhost" when empty
}

// tlsDial runs a real TLS handshake against a loopback server with a
// self-signed certificate for localhost, verified by crypto/tls.
func tlsDial(tc tlsCase) func(*testing.T) error {
	return func(t *testing.T) error {
		notAfter := time.Now().Add(time.Hour)
		if tc.expired {
			notAfter = time.Now().Add(-time.Hour)
		}
		cert := selfSigned(t, notAfter)
		addr := serveTLS(t, cert)
		cfg := &tls.Config{ServerName: tc.serverName}
		if cfg.ServerName == "" {
			cfg.ServerName = "localhost"
		}
		if tc.trusted {
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AddCert(cert.Leaf)
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: defaultTestTimeout}, "tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
}

func selfSigned(t *testing.T, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             notAfter.Add(-24 * time.Hour),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// serveTLS accepts TLS connections on loopback until the test ends.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(defaultTestTimeout))
			_ = c.(*tls.Conn).Handshake() // fails: the client rejects us
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}
