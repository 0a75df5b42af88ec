package consumer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
	"github.com/warrenmq/warren/integration/testkit"
	"github.com/warrenmq/warren/reconnect"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 20 * time.Second
	// faultTimeout bounds one fault-tool call (rabbitmqctl boots an Erlang VM).
	faultTimeout = 60 * time.Second
	// quietPeriod is how long a test watches for something that must not happen.
	quietPeriod = 500 * time.Millisecond
	// killRequestTimeout bounds one management API kill.
	killRequestTimeout = 5 * time.Second
)

// The event recorder and its matchers are shared by every integration test
// package (see testkit).
type recorder = testkit.Recorder

var (
	newRecorder   = testkit.NewRecorder
	kind          = testkit.Kind
	state         = testkit.InState
	consumerEvent = testkit.ConsumerEvent
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
	if opts.Reconnect == (reconnect.Policy{}) {
		opts.Reconnect = fastPolicy()
	}
	s, err := conn.New(opts)
	if err != nil {
		t.Fatalf("conn.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
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

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// consume starts a consumer and closes it at cleanup (before the
// supervisor, since cleanups run last-in first-out).
func consume(t testing.TB, s *conn.Supervisor, q *conn.Queue, h conn.Handler, opts conn.ConsumerOptions) *conn.Consumer {
	t.Helper()
	c, err := s.Consume(testCtx(t, defaultTestTimeout), q, h, opts)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Consumer.Close at cleanup: %v", err)
		}
	})
	return c
}

// admin is a plain amqp091-go connection with the broker's administrator
// credentials, for the test's own declarations and publishing.
type admin struct {
	t    testing.TB
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newAdmin(t testing.TB, b *broker.Broker) *admin {
	t.Helper()
	c, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatalf("admin dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	a := &admin{t: t, conn: c}
	a.reopen()
	return a
}

// reopen replaces the channel, which the broker closes after a refused
// operation.
func (a *admin) reopen() {
	a.t.Helper()
	ch, err := a.conn.Channel()
	if err != nil {
		a.t.Fatalf("admin channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		a.t.Fatalf("admin confirm mode: %v", err)
	}
	a.ch = ch
}

// queue declares a non-durable queue called name (deleted at cleanup).
func (a *admin) queue(name string, args amqp.Table) {
	a.t.Helper()
	if _, err := a.ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		a.t.Fatalf("declare queue %s: %v", name, err)
	}
	a.t.Cleanup(func() { a.deleteQueue(name) })
}

func (a *admin) deleteQueue(name string) {
	if a.ch.IsClosed() {
		return
	}
	_, _ = a.ch.QueueDelete(name, false, false, false)
}

// messages returns how many ready messages queue holds.
func (a *admin) messages(name string) int {
	a.t.Helper()
	q, err := a.ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err != nil {
		a.t.Fatalf("inspect queue %s: %v", name, err)
	}
	return q.Messages
}

// publish publishes bodies to exchange with key, persistent, each with its
// body as MessageId, and waits for every confirm.
func (a *admin) publish(exchange, key string, bodies ...string) {
	a.t.Helper()
	ctx := testCtx(a.t, defaultTestTimeout)
	var pending []*amqp.DeferredConfirmation
	for _, body := range bodies {
		dc, err := a.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			MessageId:    body,
			Body:         []byte(body),
		})
		if err != nil {
			a.t.Fatalf("publish %q: %v", body, err)
		}
		pending = append(pending, dc)
	}
	for _, dc := range pending {
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			a.t.Fatalf("confirm of delivery %d: ack %v err %v", dc.DeliveryTag, ok, err)
		}
	}
}

var nameSeq atomic.Int64

// uniqueName returns a queue or exchange name no other test uses.
func uniqueName(t testing.TB, what string) string {
	return fmt.Sprintf("warren.%s.%s.%d", strings.ReplaceAll(t.Name(), "/", "."), what, nameSeq.Add(1))
}

// killer closes the connections of one user from the broker's side, as
// fast as the broker allows: through the management API when there is one
// (a few milliseconds), else through a fault proxy the user's supervisor
// must dial (a TCP reset; the broker sees the socket die), since
// rabbitmqctl costs about a second per call.
type killer struct {
	t      testing.TB
	how    string
	mgmt   *url.URL
	user   string
	client *http.Client
	proxy  *faultproxy.Proxy
}

// newKiller returns a killer of user's connections and the URL the
// supervisor must dial so the killer can reach its connection.
func newKiller(t testing.TB, b *broker.Broker, user, pass string) (*killer, string) {
	t.Helper()
	k := &killer{t: t, user: user}
	if b.MgmtURL != "" {
		u, err := url.Parse(b.MgmtURL)
		if err != nil {
			t.Fatalf("management URL: %v", err)
		}
		k.how, k.mgmt = "management API DELETE /api/connections/username", u
		// No keep-alive: no transport goroutine outlives the test (goleak).
		k.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: killRequestTimeout}
		return k, b.URLWith(user, pass, "/")
	}
	p, err := faultproxy.New(b.Addr())
	if err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	k.how, k.proxy = "fault proxy Reset", p
	u, err := url.Parse(b.URLWith(user, pass, "/"))
	if err != nil {
		t.Fatalf("broker URL: %v", err)
	}
	u.Host = p.Addr()
	return k, u.String()
}

// kill closes every connection of the user once.
func (k *killer) kill(ctx context.Context) error {
	if k.proxy != nil {
		k.proxy.Reset()
		return nil
	}
	u := *k.mgmt
	pass, _ := u.User.Password()
	name := u.User.Username()
	u.User = nil
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/connections/username/" + url.PathEscape(k.user)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(name, pass)
	req.Header.Set("X-Reason", "warren test kill")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("DELETE connections of %s: %s", k.user, resp.Status)
	}
	return nil
}

// Shared test setup (see testkit).
var (
	fastPolicy  = testkit.FastPolicy
	quietLogger = testkit.QuietLogger
)
