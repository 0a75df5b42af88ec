package warrentest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenmq/warren/integration/broker"
	// The Docker path: Broker runs a container when a Docker engine answers.
	_ "github.com/warrenmq/warren/integration/broker/docker"
)

// Bounds of the broker's own operations. Generous: a node boots in 5 to 15
// s, longer on a loaded machine.
const (
	findTimeout  = 3 * time.Minute
	closeTimeout = 2 * time.Minute
	faultTimeout = 30 * time.Second
)

// Faults injects failures into the broker and administers it; see
// broker.Faults for each method.
type Faults = broker.Faults

// Connection is one client connection as the broker lists it.
type Connection = broker.Connection

// Options tunes Main and Broker; see broker.Options. The zero value is
// what Main uses.
type Options = broker.Options

// ErrUnsupported is wrapped by the error of a fault the broker cannot take.
var ErrUnsupported = broker.ErrUnsupported

// Server is a RabbitMQ broker for tests.
type Server struct {
	// URL is the broker's amqp:// URL, with an administrator's credentials.
	URL string
	// MgmtURL is the management API's URL with credentials, or "" when the
	// broker has none (a local node started without Options.Management).
	MgmtURL string
	// Version is the RabbitMQ release, such as "4.0.5", when known.
	Version string
	// Source says how the broker was found: "AMQP_URL", "docker" or "local".
	Source string
	// Faults injects failures into this broker.
	Faults Faults

	b *broker.Broker
}

func newServer(b *broker.Broker) *Server {
	return &Server{URL: b.URL, MgmtURL: b.MgmtURL, Version: b.Version, Source: b.Source, Faults: b.Faults, b: b}
}

// Main runs a test binary's tests against one shared broker, found or
// started as Broker describes, stops it afterwards, checks for leaked
// goroutines (goleak), and exits. Call it from TestMain. Integration tests
// do not skip: when no broker can be had, Main fails saying how to get one.
func Main(m *testing.M) { broker.Main(m) }

// MainWith is Main with options, such as Options{Management: true}.
func MainWith(m *testing.M, opts Options) { broker.MainWith(m, opts) }

// Broker returns the test binary's shared broker when TestMain called Main
// (or warren's broker.Main). Otherwise it finds or starts a broker for this
// test alone and stops it at the test's cleanup, which costs a node's boot
// per test. It fails the test when no broker can be had.
func Broker(t testing.TB) *Server {
	t.Helper()
	if b := broker.Current(); b != nil {
		return newServer(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), findTimeout)
	defer cancel()
	b, err := broker.Find(ctx, t.Logf)
	if err != nil {
		t.Fatalf("warrentest: no broker: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("warrentest: stopping the broker: %v", err)
		}
	})
	return newServer(b)
}

// Addr is the broker's AMQP host:port.
func (s *Server) Addr() string { return s.b.Addr() }

var userSeq atomic.Int64

// User creates a user with full permissions on the vhost "/", deleted at
// the test's cleanup, and returns the broker's URL with its credentials and
// its name. Give it to the service under test: Faults.CloseUserConnections
// then kills exactly that service's connections.
func (s *Server) User(t testing.TB) (amqpURL, user string) {
	t.Helper()
	user = fmt.Sprintf("warrentest-%s-%d", strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()), userSeq.Add(1))
	pass := "pw-" + user
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	if err := s.Faults.AddUser(ctx, user, pass); err != nil {
		t.Fatalf("warrentest: adding user: %v", err)
	}
	if err := s.Faults.SetPermissions(ctx, "/", user); err != nil {
		t.Fatalf("warrentest: granting permissions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
		defer cancel()
		_ = s.Faults.DeleteUser(ctx, user)
	})
	return s.b.URLWith(user, pass, "/"), user
}

// withHost returns rawURL with its host:port replaced by addr.
func withHost(rawURL, addr string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("warrentest: parsing a broker URL: %w", err)
	}
	u.Host = addr
	return u.String(), nil
}
