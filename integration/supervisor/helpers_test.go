package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 60 * time.Second
)

// The event recorder and its matchers are shared by every integration test
// package (see testkit).
type recorder = testkit.Recorder

var (
	newRecorder = testkit.NewRecorder
	kind        = testkit.Kind
	state       = testkit.InState
	describe    = testkit.Describe
)

// testUser creates a user with full permissions on "/" so the test can find
// and kill exactly its own connections; it is deleted at cleanup.
func testUser(t testing.TB, b *broker.Broker) (user, pass string) {
	return testkit.TestUser(t, b, faultTimeout)
}

// start creates a supervisor with the recorder attached and closes it at cleanup.
func start(t testing.TB, opts conn.Options) (*conn.Supervisor, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts.OnEvent = rec.Handle
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	s, err := conn.New(opts)
	if err != nil {
		t.Fatalf("conn.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close at cleanup: %v", err)
		}
	})
	return s, rec
}

func waitReady(t testing.TB, s *conn.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v (last error %v)", err, s.Err())
	}
}

func faultCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	t.Cleanup(cancel)
	return ctx
}

// userConnections counts the broker's connections of user.
func userConnections(t testing.TB, b *broker.Broker, user string) int {
	t.Helper()
	conns, err := b.Faults.ListConnections(faultCtx(t))
	if err != nil {
		t.Fatalf("list connections: %v", err)
	}
	n := 0
	for _, c := range conns {
		if c.User == user {
			n++
		}
	}
	return n
}

// Shared test setup (see testkit).
var (
	fastPolicy  = testkit.FastPolicy
	quietLogger = testkit.QuietLogger
)
